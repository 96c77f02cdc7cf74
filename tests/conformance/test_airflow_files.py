"""DAG files written for Airflow 3.3 (some of Airflow's own examples, unmodified, and airstep_*.py) run
under airstep as they are and end as Airflow's dag.test() ended them (airflow_files.jsonl): the run
state, each task's state and try number."""

from __future__ import annotations

import pytest

from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep_cli.compat import report
from airstep_compiler import DagSource
from airstep_local.engine import LocalEngine, RunRequest
from conformance.recorded import AIRFLOW_FILES, FILE_RECORDS


def test_every_file_is_recorded():
    assert {r["file"] for r in FILE_RECORDS} == {p.name for p in AIRFLOW_FILES.glob("*.py")}


def test_compat_reports_nothing_for_files_that_run():
    assert report(sorted(AIRFLOW_FILES.glob("*.py"))).findings == []


@pytest.mark.parametrize("record", FILE_RECORDS, ids=lambda r: r["dag_id"])
def test_the_file_runs_unmodified_and_ends_as_in_airflow(record):
    path = AIRFLOW_FILES / record["file"]
    loaded = load_dag_file(path)
    assert not loaded.errors, loaded.errors
    model = DagModel.from_dag(loaded.dags[record["dag_id"]])
    with LocalEngine() as engine:
        result = engine.run(model, DagSource(str(path), loaded.version), RunRequest(fast_retries=True))
    tasks = {t.task_id: {"state": str(t.state), "try_number": t.try_number} for t in result.tasks}
    assert {"run_state": result.state.value, "tasks": tasks} == record["airflow"]
