"""DAG files written for Airflow 3.3 (some of Airflow's own examples, unmodified, and airstep_*.py) run
under airstep as they are, build the edges Airflow builds, and end as Airflow's dag.test() ended them
(airflow_files.jsonl): the run state, each task's state and try number, and every return value."""

from __future__ import annotations

import pytest

from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep_cli.compat import report
from conformance.airflow_file_runs import run_files
from conformance.airstep_runs import BACKGROUND, FILES_JOB
from conformance.recorded import AIRFLOW_FILES, FILE_RECORDS


def test_every_file_is_recorded():
    assert {r["file"] for r in FILE_RECORDS} == {p.name for p in AIRFLOW_FILES.glob("*.py")}


def test_compat_reports_nothing_for_files_that_run():
    assert report(sorted(AIRFLOW_FILES.glob("*.py"))).findings == []


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
    loaded = load_dag_file(AIRFLOW_FILES / record["file"])
    assert not loaded.errors, loaded.errors
    model = DagModel.from_dag(loaded.dags[record["dag_id"]])
    assert {t.task_id: list(t.upstream) for t in model.tasks} == record["upstream"]
    ran = BACKGROUND.result(FILES_JOB, run_files, FILE_RECORDS)[record["dag_id"]]  # every file, in the background
    assert ran.error is None, ran.error
    expected, expected_values = airstep_expects(record)
    assert ran.answer == expected
    unstable = {task for dag, task in VARY_BY_MACHINE if dag == record["dag_id"]}
    assert {task_id: value for task_id, value in ran.values.items() if task_id not in unstable} == {
        task_id: value for task_id, value in expected_values.items() if task_id not in unstable
    }
