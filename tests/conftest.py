"""Shared fixtures: the real local engine (moto) and helpers to load DAG files."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from airstep_local.engine import LocalEngine, RunRequest, RunResult
from helpers import load_model


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    with LocalEngine() as local:
        yield local


@pytest.fixture
def dag_file(tmp_path: Path):
    """Write a DAG file from source text and return its path."""

    def write(source: str, name: str = "dag.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def run_file(engine: LocalEngine):
    """Run a DAG file on the local engine; returns (result, engine) helpers."""

    def run(path: Path, dag_id: str | None = None, **request: object) -> RunResult:
        model, source = load_model(path, dag_id)
        return engine.run(model, source, RunRequest(**request))  # type: ignore[arg-type]

    return run


RANDOM_CONFORMANCE = "tests/conformance/test_conformance.py::test_airstep_agrees_with_airflow"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The random conformance DAGs run in two background processes while the other tests run here:
    their checks come last, by when their runs are mostly done."""
    items.sort(key=lambda item: item.nodeid.startswith(RANDOM_CONFORMANCE))


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(item.nodeid.startswith(RANDOM_CONFORMANCE) for item in session.items):
        from conformance.airstep_runs import BACKGROUND
        from conformance.recorded import SPECS

        BACKGROUND.start(list(SPECS.values()))


def pytest_sessionfinish(session: pytest.Session) -> None:
    from conformance.airstep_runs import BACKGROUND

    BACKGROUND.stop()
