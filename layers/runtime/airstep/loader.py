"""Loads DAG files: executes them, collects their DAGs and turns every failure into a located error."""

from __future__ import annotations

import contextlib
import hashlib
import io
import linecache
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from airstep.compat.imports import airflow_imports
from airstep.errors import DagDefinitionError, SourceLocation, collecting_refusals
from airstep.sdk.dag import DAG, collect_dags
from airstep.secrets_masker import redact

MAX_DAG_FILE_BYTES = 10 * 1024 * 1024
DAG_MODULE_PREFIX = "airstep_dagfile_"  # a DAG file's module: this and a hash of its path and source


@dataclass(frozen=True, slots=True)
class DagLoadError:
    """Why a DAG file could not be loaded, as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class LoadedFile:
    """The outcome of loading one DAG file: its DAGs, or the errors that stopped it."""

    path: str
    version: str
    dags: dict[str, DAG] = field(default_factory=dict)
    errors: list[DagLoadError] = field(default_factory=list)


def content_version(source: bytes) -> str:
    """The version of a local DAG file: a hash of its bytes (S3 object versions play this part in AWS)."""
    return "sha256:" + hashlib.sha256(source).hexdigest()[:20]


_import_lock = threading.Lock()


def load_dag_file(
    path: str | Path, source: bytes | None = None, *, module_file: str | None = None, every_refusal: bool = False
) -> LoadedFile:
    """Execute a DAG file and return its DAGs, or located errors; never raises for user mistakes.

    `path` names the file (in errors and in the DAGs' locations: an s3:// URI for a deployed file);
    `module_file` is where its bytes are on this machine, its `__file__` (DAG files read files beside
    them), when that differs from `path`. With `every_refusal` (a report), every operator that refuses
    how it is built is an error and the file loads on; such a load gives no DAGs."""
    path_str = str(path)
    if source is None:
        try:
            size = Path(path_str).stat().st_size
            if size > MAX_DAG_FILE_BYTES:
                return _failed(path_str, b"", 1, f"file is {size} bytes; DAG files are limited to {MAX_DAG_FILE_BYTES}")
            source = Path(path_str).read_bytes()
        except OSError as exc:
            return _failed(path_str, b"", 0, f"cannot read file: {exc.strerror or exc}")
    result = LoadedFile(path=path_str, version=content_version(source))
    if len(source) > MAX_DAG_FILE_BYTES:
        result.errors.append(DagLoadError(path_str, 1, f"file is {len(source)} bytes; limit {MAX_DAG_FILE_BYTES}"))
        return result
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = source[: exc.start].count(b"\n") + 1
        result.errors.append(DagLoadError(path_str, line, "file is not valid UTF-8"))
        return result
    # its source is found by the name it is compiled under (a URI, or a path relative to elsewhere):
    # inspect.getsource and tracebacks read it there
    # (lines as the compiler counts them: \n, \r\n or \r ends one; str.splitlines would also split at \f)
    linecache.cache[path_str] = (len(text), None, io.StringIO(text, newline=None).readlines(), path_str)
    try:
        code = compile(text, path_str, "exec", dont_inherit=True)
    except SyntaxError as exc:
        result.errors.append(DagLoadError(path_str, exc.lineno or 1, f"SyntaxError: {exc.msg}"))
        return result
    except ValueError as exc:  # e.g. source containing NUL bytes
        result.errors.append(DagLoadError(path_str, 1, f"cannot compile: {exc}"))
        return result

    module_name = DAG_MODULE_PREFIX + hashlib.sha256(path_str.encode() + source).hexdigest()[:16]
    module = types.ModuleType(module_name)
    module.__file__ = module_file or path_str
    folder = str(Path(module.__file__).resolve().parent)
    with _import_lock:
        added_path = Path(path_str).is_file() and folder not in sys.path
        if added_path:
            sys.path.insert(0, folder)  # Airflow puts the DAG folder on sys.path for helper modules
        sys.modules[module_name] = module
        refusals: list[DagDefinitionError] = []
        try:
            with (
                airflow_imports(),
                collect_dags() as dags,
                collecting_refusals() if every_refusal else contextlib.nullcontext(refusals) as refusals,
            ):
                exec(code, module.__dict__)  # noqa: S102 - executing the user's DAG file is the point
        except DagDefinitionError as exc:
            refusals.append(exc)
        except BaseException as exc:  # noqa: BLE001 - any failure in user code is an import error
            if isinstance(exc, KeyboardInterrupt):
                raise
            sys.modules.pop(module_name, None)
            module.__dict__.clear()  # free what the file built (a MemoryError leaves no room to report)
            if not refusals:  # (after a refusal, it may come of the operator left half-built)
                result.errors.append(DagLoadError(path_str, _user_line(exc, path_str), _describe(exc)))
        finally:
            if added_path and folder in sys.path:
                sys.path.remove(folder)
        if refusals or result.errors:
            result.errors[:0] = [_located(path_str, e.location, e.message, e) for e in refusals]
            sys.modules.pop(module_name, None)
            return result

    for found in dags:
        found.folder = folder
        if found.dag_id in result.dags:
            first = result.dags[found.dag_id].location.line
            result.errors.append(
                DagLoadError(
                    path_str, found.location.line, f"dag_id {found.dag_id!r} is defined twice (first at line {first})"
                )
            )
            continue
        try:
            found.validate()
        except DagDefinitionError as exc:
            result.errors.append(_located(path_str, exc.location, exc.message))
            continue
        if not found.task_dict:
            result.errors.append(DagLoadError(path_str, found.location.line, f"DAG {found.dag_id!r} has no tasks"))
            continue
        result.dags[found.dag_id] = found
    if not dags and not result.errors:
        result.errors.append(DagLoadError(path_str, 1, "no DAG is defined in this file"))
    return result


def _failed(path: str, source: bytes, line: int, message: str) -> LoadedFile:
    return LoadedFile(path=path, version=content_version(source), errors=[DagLoadError(path, line, message)])


def _located(path: str, location: SourceLocation, message: str, exc: BaseException | None = None) -> DagLoadError:
    if location.file == path:
        return DagLoadError(path, location.line, message)
    line = _user_line(exc, path) if exc is not None else 0
    return DagLoadError(path, line, f"{message} (at {location})")


def _user_line(exc: BaseException, path: str) -> int:
    """The innermost line of the DAG file in the exception's stack (0 if none)."""
    line = 0
    outer = getattr(exc, "outer_stack", None) or []
    for frame in [*outer, *traceback.extract_tb(exc.__traceback__)]:
        if frame.filename == path:
            line = frame.lineno or 0
    return line


def _describe(exc: BaseException) -> str:
    text = redact(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
