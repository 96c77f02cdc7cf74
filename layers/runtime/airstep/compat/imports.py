"""`airflow.*` imports answered by airstep, only while airstep loads a DAG file or runs its tasks.

`airflow_imports()` puts a finder first on `sys.meta_path` and moves any real `airflow` modules
aside; on the way out it restores them, so a real Airflow installed beside airstep is never
shadowed for other code. Scopes nest and may overlap across threads (the local engine runs tasks
in threads): the first to enter installs the finder, the last to leave removes it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airstep.compat.surface import PACKAGES, SURFACE, is_airflow_module, is_known_module, not_supported, target


class NotSupportedByAirstep(ImportError):
    """A DAG file imports an Airflow module or name that airstep does not implement."""


class _SurfaceModule(types.ModuleType):
    """An Airflow module as airstep answers it: its names resolve to airstep objects on first use."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        submodule = f"{self.__name__}.{name}"
        if is_known_module(submodule):
            return importlib.import_module(submodule)
        where = target(self.__name__, name)
        if where is None:
            raise NotSupportedByAirstep(not_supported(submodule), name=self.__name__)
        module_name, attribute = where.split(":")
        value = getattr(importlib.import_module(module_name), attribute)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(SURFACE.get(self.__name__, {}))


class _SurfaceLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _SurfaceModule(spec.name)
        _ours[spec.name] = module  # kept between scopes; only the finder, first on the path, makes them
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__all__ = sorted(SURFACE.get(module.__name__, {}))  # type: ignore[attr-defined]


class _AirflowFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not is_airflow_module(fullname):
            return None
        if not is_known_module(fullname):
            raise NotSupportedByAirstep(not_supported(fullname), name=fullname)
        return importlib.machinery.ModuleSpec(fullname, _LOADER, is_package=fullname in PACKAGES)


_LOADER = _SurfaceLoader()
_FINDER = _AirflowFinder()
_lock = threading.Lock()
_depth = 0
_ours: dict[str, types.ModuleType] = {}  # our modules, kept between scopes
_theirs: dict[str, types.ModuleType] = {}  # a real Airflow's modules, set aside during a scope


def _set_aside_real_airflow() -> None:
    """Move a real Airflow's modules out of sys.modules (none can be there without `airflow` itself)."""
    if "airflow" in sys.modules:
        for name in [name for name in sys.modules if is_airflow_module(name)]:
            _theirs[name] = sys.modules.pop(name)


@contextmanager
def airflow_imports() -> Iterator[None]:
    """While inside, `import airflow...` gives airstep's implementation of that module."""
    global _depth
    with _lock:
        if _depth == 0:
            _set_aside_real_airflow()
            sys.modules.update(_ours)
            sys.meta_path.insert(0, _FINDER)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                sys.meta_path.remove(_FINDER)
                for name in _ours:
                    sys.modules.pop(name, None)
                sys.modules.update(_theirs)
                _theirs.clear()
