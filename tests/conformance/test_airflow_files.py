"""DAG files written for Airflow 3.3 (some of Airflow's own examples, unmodified, and airstep_*.py) run
under airstep as they are, build the edges Airflow builds, and end as Airflow's dag.test() ended them
(airflow_files.jsonl): the run state, each task's state and try number, and every return value."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep.runtime.store import RunKey
from airstep_cli.compat import report
from airstep_compiler import DagSource
from airstep_local.engine import LocalEngine, RunRequest
from conformance.recorded import AIRFLOW_FILES, FILE_RECORDS


def test_every_file_is_recorded():
    assert {r["file"] for r in FILE_RECORDS} == {p.name for p in AIRFLOW_FILES.glob("*.py")}


def test_compat_reports_nothing_for_files_that_run():
    assert report(sorted(AIRFLOW_FILES.glob("*.py"))).findings == []


# The oracle runs every DAG at this logical date (its default): templates and logical-date branches
# see the same day in both.
LOGICAL_DATE = datetime(2026, 1, 1, tzinfo=UTC)
# Return values that describe the machine rather than the DAG (a file's stat, $AIRFLOW_HOME).
VARY_BY_MACHINE = {
    ("example_bash_decorator", "get_file_stats"),
    ("example_bash_decorator", "describe_dag_folder"),
    ("example_bash_decorator", "show_dag_folder_stats"),
}

# Where airstep departs from Airflow 3.3.2 on purpose (README, "Mapped task groups"): a branch inside
# a mapped task group skips the tasks it does not follow at its own map index. Airflow 3.3.2 skips
# nothing there (SkipMixin leaves a mapped instance's skips to NotPreviouslySkippedDep, which looks
# for the branch's decision at map index -1 and never finds it), so every branch runs.
SKIPPED_PER_MAP_INDEX = {
    "airstep_mapped_group_branch": {"route.even[0]", "route.even[2]", "route.odd[1]", "route.odd[3]"},
}


def airstep_expects(record: dict) -> tuple[dict, dict]:
    """Airflow's answer for the DAG, and its return values, with airstep's departures applied."""
    skipped = SKIPPED_PER_MAP_INDEX.get(record["dag_id"], set())
    tasks = {
        label: {"state": "skipped", "try_number": 0} if label in skipped else answer
        for label, answer in record["airflow"]["tasks"].items()
    }
    values = {label: value for label, value in record["return_values"].items() if label not in skipped}
    return {**record["airflow"], "tasks": tasks}, values


@pytest.mark.parametrize("record", FILE_RECORDS, ids=lambda r: r["dag_id"])
def test_the_file_runs_unmodified_and_ends_as_in_airflow(record):
    path = AIRFLOW_FILES / record["file"]
    loaded = load_dag_file(path)
    assert not loaded.errors, loaded.errors
    model = DagModel.from_dag(loaded.dags[record["dag_id"]])
    assert {t.task_id: list(t.upstream) for t in model.tasks} == record["upstream"]
    with LocalEngine() as engine:
        source = DagSource(str(path), loaded.version)
        if any(task.trigger for task in model.tasks):  # the file's DAGs it may trigger, deployed beside it
            others = [(DagModel.from_dag(dag), source) for dag in loaded.dags.values()]
            engine.deploy_triggerable(others, RunRequest(fast_retries=True))
        result = engine.run(model, source, RunRequest(LOGICAL_DATE, fast_retries=True))
        values = return_values(engine, RunKey(result.dag_id, result.run_id), model)
        engine.triggered_results()  # (the runs it triggered end before the engine does)
    tasks = {t.label: {"state": str(t.state), "try_number": t.try_number} for t in result.tasks}
    expected, expected_values = airstep_expects(record)
    assert {"run_state": result.state.value, "tasks": tasks} == expected
    unstable = {task for dag, task in VARY_BY_MACHINE if dag == record["dag_id"]}
    assert {task_id: as_the_oracle_reads(value) for task_id, value in values.items() if task_id not in unstable} == {
        task_id: value for task_id, value in expected_values.items() if task_id not in unstable
    }


def return_values(engine: LocalEngine, key: RunKey, model: DagModel) -> dict[str, object]:
    """Every instance's return value by its Airflow name (`task`, or `task[i]` for a mapped instance)."""
    values = engine.store.get_xcoms(key, [t.task_id for t in model.tasks if not t.mapped])
    for task in model.tasks:
        if task.mapped:
            _, instances = engine.store.get_mapped(key, task.task_id)
            values |= {ti.label: ti.xcom() for ti in instances if ti.xcoms and '"return_value"' in ti.xcoms}
    return values


def as_the_oracle_reads(value: object) -> object:
    """A return value as the fixture holds it: the oracle reads XComs back with Airflow's
    XComModel.deserialize_value, which JSON-decodes a string when it can ("3" becomes 3; a task
    pulling the XCom in Airflow gets the string)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
