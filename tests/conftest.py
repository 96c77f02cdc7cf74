"""Shared fixtures: the real local engine (moto) and helpers to load DAG files."""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.testing

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
AIRFLOW_FILE_RUNS = "tests/conformance/test_airflow_files.py::test_the_file_runs_unmodified_and_ends_as_in_airflow"
FAULT_SUITE = "tests/e2e/test_fault_injection.py::test_no_record_is_lost_stuck_or_wrong_under_faults"
IN_THE_BACKGROUND = (RANDOM_CONFORMANCE, AIRFLOW_FILE_RUNS, FAULT_SUITE)


# print() holds sys.stdout by a borrowed reference while it writes (CPython up to 3.12.9 and 3.13.2,
# gh-130163). A stream that a test swaps in and then drops (capsys, CliRunner) would be freed while a
# task of a background run still prints into it, and the process would crash: every stream a test
# puts in sys is kept for the session (airstep's own masked streams keep themselves).
_STREAMS_KEPT: dict[int, object] = {}


def _keep_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        _STREAMS_KEPT.setdefault(id(stream), stream)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    _keep_streams()
    try:
        return (yield)
    finally:
        _keep_streams()


_isolation = typer.testing.CliRunner.isolation


@contextlib.contextmanager
def _isolation_keeping_streams(self: typer.testing.CliRunner, *args: Any, **kwargs: Any) -> Iterator[Any]:
    with _isolation(self, *args, **kwargs) as streams:
        _keep_streams()
        yield streams


typer.testing.CliRunner.isolation = _isolation_keeping_streams  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The random conformance DAGs, the Airflow files and the fault-injection suite run in background
    processes while the other tests run here: their checks come last, by when their runs are mostly done."""
    items.sort(key=lambda item: item.nodeid.startswith(IN_THE_BACKGROUND))


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    from conformance.airflow_file_runs import run_files
    from conformance.airstep_runs import BACKGROUND, FILES_JOB, start_plans
    from conformance.recorded import FILE_RECORDS, SPECS

    if any(item.nodeid.startswith(RANDOM_CONFORMANCE) for item in session.items):
        start_plans(list(SPECS.values()))
    if any(item.nodeid.startswith(AIRFLOW_FILE_RUNS) for item in session.items):
        BACKGROUND.submit(FILES_JOB, run_files, FILE_RECORDS)
    if any(item.nodeid == FAULT_SUITE for item in session.items):
        from test_fault_injection import start_suite

        start_suite()


def pytest_sessionfinish(session: pytest.Session) -> None:
    from conformance.airstep_runs import BACKGROUND

    BACKGROUND.stop()
    if "test_fault_injection" in sys.modules:
        sys.modules["test_fault_injection"].stop_suite()
