"""Finding and parsing DAG files for the CLI, turning problems into `file:line: message` lines.

DAG files are parsed in the sandbox (airstep.sandbox), never in the CLI's own process."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from airstep.model import DagModel
from airstep.sandbox import ParsedFile, parse_dag_file
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


def load_one(path: str, dag_id: str | None = None) -> tuple[ParsedFile, list[DagModel]]:
    """Parse one DAG file (in the sandbox: a child process with a time and memory limit); UserError if
    it is broken or does not define `dag_id`."""
    if not Path(path).is_file():
        raise UserError([f"{path}: no such file"])
    parsed = parse_dag_file(Path(path), uri=str(Path(path)))
    if parsed.errors:
        raise UserError(str(e) for e in parsed.errors)
    models = [DagModel.from_json(m) for m in parsed.models]
    if dag_id is not None:
        found = ", ".join(m.dag_id for m in models)
        models = [m for m in models if m.dag_id == dag_id]
        if not models:
            raise UserError([f"{path}: no DAG with dag_id {dag_id!r} (found: {found})"])
    return parsed, models


def the_only_dag(path: str, models: list[DagModel]) -> DagModel:
    if len(models) > 1:
        ids = ", ".join(m.dag_id for m in models)
        raise UserError([f"{path}: defines several DAGs ({ids}); choose one with --dag-id"])
    return models[0]


def problems_of(files: Iterable[Path], every_refusal: bool = False) -> tuple[int, list[str]]:
    """Parse (in the sandbox, a few files at a time) and compile every DAG in `files`; return how many
    DAGs are fine and every problem (`every_refusal`: every operator's that refuses how it is built,
    not only the first of a file's)."""
    good = 0
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        parsed_files = list(
            pool.map(lambda file: parse_dag_file(file, uri=str(file), every_refusal=every_refusal), files)
        )
    for parsed in parsed_files:
        problems.extend(str(e) for e in parsed.errors)
        for model_json in parsed.models:
            try:
                compile_dag(DagModel.from_json(model_json), DagSource(parsed.file, parsed.version))
            except CompileError as exc:
                problems.append(str(exc))
            else:
                good += 1
    return good, problems


def source_of(parsed: ParsedFile) -> DagSource:
    """Where a local run's tasks load the DAG from: the parsed file, at the version parsed."""
    return DagSource(str(Path(parsed.file).resolve()), parsed.version)
