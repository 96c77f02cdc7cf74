"""Finding and loading DAG files for the CLI, turning problems into `file:line: message` lines."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from airstep.loader import LoadedFile, load_dag_file
from airstep.model import DagModel
from airstep_cli.errors import UserError
from airstep_compiler import CompileError, DagSource, compile_dag


def expand_paths(paths: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.py") if not any(part.startswith(".") for part in p.parts)))
        else:
            files.append(path)
    return files


def load_one(path: str, dag_id: str | None = None) -> tuple[LoadedFile, list[DagModel]]:
    """Load one DAG file; UserError if it is broken or does not define `dag_id`."""
    if not Path(path).is_file():
        raise UserError([f"{path}: no such file"])
    loaded = load_dag_file(str(Path(path)))
    if loaded.errors:
        raise UserError(str(e) for e in loaded.errors)
    models = [DagModel.from_dag(d) for d in loaded.dags.values()]
    if dag_id is not None:
        models = [m for m in models if m.dag_id == dag_id]
        if not models:
            raise UserError([f"{path}: no DAG with dag_id {dag_id!r} (found: {', '.join(loaded.dags)})"])
    return loaded, models


def the_only_dag(path: str, models: list[DagModel]) -> DagModel:
    if len(models) > 1:
        ids = ", ".join(m.dag_id for m in models)
        raise UserError([f"{path}: defines several DAGs ({ids}); choose one with --dag-id"])
    return models[0]


def problems_of(files: Iterable[Path]) -> tuple[int, list[str]]:
    """Load and compile every DAG in `files`; return how many DAGs are fine and every problem."""
    good = 0
    problems: list[str] = []
    for file in files:
        loaded = load_dag_file(str(file))
        problems.extend(str(e) for e in loaded.errors)
        for dag in loaded.dags.values():
            try:
                compile_dag(DagModel.from_dag(dag), DagSource(loaded.path, loaded.version))
            except CompileError as exc:
                problems.append(str(exc))
            else:
                good += 1
    return good, problems
