"""`airstep compat`: what in a folder of Airflow DAG files airstep does not support, file:line by line.

The report reads each file's syntax tree: every `airflow` module and name it imports that airstep does
not answer (airstep.compat.surface), every attribute it uses of a supported name that airstep lacks
(`@task.bash`, `TriggerRule.X`), every keyword it passes to a supported DAG, operator or
decorator that airstep does not take. Each file is also loaded and compiled as `airstep validate`
does, so what stops it at load time is reported too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airstep.compat.surface import is_airflow_module, is_known_module, not_supported, target
from airstep_cli.dagfiles import expand_paths, problems_of

# Callables that take **kwargs and hand them on: their keywords are those of what they hand them to.
_FORWARDS_TO = {
    "airstep.sdk.taskflow:task": "airstep.sdk.taskflow:DecoratedPythonOperator",
    "airstep.sdk.dag:dag": "airstep.sdk.dag:DAG",
}
TASK_DECORATOR = "airstep.sdk.taskflow:task"
# Keys of Airflow 3.3's task context that airstep does not provide (a TaskFlow parameter asks for one).
CONTEXT_KEYS_AIRSTEP_LACKS = frozenset(
    {
        "asset_state_store",
        "expanded_ti_count",
        "inlet_events",
        "inlets",
        "outlet_events",
        "outlets",
        "partition_date",
        "partition_key",
        "prev_data_interval_end_success",
        "prev_data_interval_start_success",
        "prev_end_date_success",
        "prev_start_date_success",
        "task_reschedule_count",
        "task_state_store",
    }
)
# Set by airstep itself, never by the DAG file: for every callable, and for the forwarded ones.
_INTERNAL = frozenset({"self", "location"})
_SET_BY_DECORATOR = frozenset({"python_callable", "op_args", "op_kwargs"})


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    file: str
    line: int
    message: str
    subject: str = field(default="", compare=False)  # the name or keyword at fault, when the scan found it

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class Report:
    files: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def files_with_findings(self) -> int:
        return len({f.file for f in self.findings})


def dag_files(paths: Iterable[str]) -> list[Path]:
    """The files to check: those named, and in folders those Airflow would parse (its safe mode: the
    file mentions both "airflow" and "dag")."""
    files: list[Path] = []
    for raw in paths:
        if Path(raw).is_dir():
            files += [path for path in expand_paths([raw]) if _looks_like_a_dag_file(path)]
        else:
            files.append(Path(raw))
    return files


def _looks_like_a_dag_file(path: Path) -> bool:
    try:
        content = path.read_bytes().lower()
    except OSError:
        return True  # reading it reports why not
    return b"airflow" in content and b"dag" in content


def report(files: Iterable[Path]) -> Report:
    """Every unsupported feature in `files`; files without any are loaded and compiled as well."""
    result = Report()
    files = list(files)
    for path in files:
        result.files += 1
        result.findings += scan(path)
    _, problems = problems_of(files, every_refusal=True)
    scanned = list(result.findings)
    for problem in problems:
        finding = Finding(*_split(problem))
        if not any(_explains(found, finding) for found in scanned):
            result.findings.append(finding)
    result.findings.sort()
    return result


def scan(path: Path) -> list[Finding]:
    """The unsupported Airflow imports, attributes and keywords in one file, read without running it."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return []  # loading the file reports it, with its line
    return _Scanner(str(path)).scan(tree)


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.findings: list[Finding] = []
        self.names: dict[str, str] = {}  # local name -> "airstep.module:attribute"

    def scan(self, tree: ast.AST) -> list[Finding]:
        self.visit(tree)
        return self.findings

    def _report(self, node: ast.AST, message: str, subject: str = "") -> None:
        self.findings.append(Finding(self.file, getattr(node, "lineno", 0), message, subject))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if is_airflow_module(alias.name) and not is_known_module(alias.name):
                self._report(node, not_supported(_unknown_prefix(alias.name)))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or not is_airflow_module(module):
            return
        if not is_known_module(module):
            self._report(node, not_supported(_unknown_prefix(module)))
            return
        for alias in node.names:
            where = target(module, alias.name)
            if where is not None:
                self.names[alias.asname or alias.name] = where
            elif not is_known_module(f"{module}.{alias.name}"):
                self._report(node, not_supported(f"{module}.{alias.name}"))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        """A parameter named like an Airflow import (`def run(task, **context)`: the context's task)
        is not that import inside the function. A TaskFlow function's parameter named after a context
        key airstep does not provide is reported."""
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
        if not isinstance(node, ast.Lambda) and any(self._is_task_decorator(d) for d in node.decorator_list):
            for argument in every:
                if argument is not None and argument.arg in CONTEXT_KEYS_AIRSTEP_LACKS:
                    self._report(
                        argument, f"the context key `{argument.arg}` is not supported by airstep", argument.arg
                    )
        shadowed = {a.arg: self.names.pop(a.arg) for a in every if a is not None and a.arg in self.names}
        self.generic_visit(node)
        self.names.update(shadowed)

    def _is_task_decorator(self, decorator: ast.expr) -> bool:
        """`@task`, `@task.sensor`, `@task(...)`, `@task.branch(...)` and the like."""
        node = decorator.func if isinstance(decorator, ast.Call) else decorator
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and self.names.get(node.id) == TASK_DECORATOR

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.names:
            obj = _resolve(self.names[node.value.id])
            if not hasattr(obj, node.attr):
                self._report(node, not_supported(f"{node.value.id}.{node.attr}"))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in self.names:
            accepted = _keywords(self.names[node.func.id])
            if accepted is not None:
                for keyword in node.keywords:
                    if keyword.arg is not None and keyword.arg not in accepted:
                        self._report(keyword, not_supported(f"{node.func.id}({keyword.arg}=...)"), keyword.arg)
        self.generic_visit(node)


def _explains(found: Finding, problem: Finding) -> bool:
    """Whether a scan finding is why loading the file failed (loading stops at the first one)."""
    if found.file != problem.file:
        return False
    return found.line == problem.line or bool(found.subject and f"'{found.subject}'" in problem.message)


def _unknown_prefix(module: str) -> str:
    """The shortest prefix of `module` that airstep does not answer (what an import would name)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        if not is_known_module(".".join(parts[:i])):
            return ".".join(parts[:i])
    return module


def _resolve(where: str) -> Any:
    module, attribute = where.split(":")
    return getattr(importlib.import_module(module), attribute)


def _keywords(where: str) -> frozenset[str] | None:
    """The keyword arguments the callable at `where` takes, or None when it takes any."""
    forwarded = where in _FORWARDS_TO
    obj = _resolve(_FORWARDS_TO.get(where, where))
    if not callable(obj):
        return None
    chain = [c.__init__ for c in inspect.getmro(obj) if "__init__" in vars(c)] if inspect.isclass(obj) else [obj]
    names: set[str] = set()
    for function in chain:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return frozenset(names - _INTERNAL - (_SET_BY_DECORATOR if forwarded else frozenset()))
    return None


def _split(problem: str) -> tuple[str, int, str]:
    """`file:line: message` back into its parts (line 0 when the problem has none)."""
    file, _, rest = problem.partition(":")
    line, _, message = rest.partition(": ")
    if line.isdigit():
        return file, int(line), message
    return file, 0, rest.lstrip(": ")
