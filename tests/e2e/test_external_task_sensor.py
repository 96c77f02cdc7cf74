"""ExternalTaskSensor against airstep's own run records. Its poke logic is Airflow 3.3's
(`airflow/providers/standard/sensors/external_task.py`, `_poke_af3`): failed_states are checked
first (ExternalTaskFailedError, or a skip with soft_fail), then skipped_states (a skip), then done
when every external task (or the run itself) is in allowed_states. dag.test() runs one DAG, so these
answers are pinned from that source, not recorded: each test names the branch it pins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airstep.loader import load_dag_file

DATE = datetime(2026, 2, 1, tzinfo=UTC)

UPSTREAM = """
from airflow.sdk import DAG, task

with DAG("upstream", schedule="@daily"):
    @task
    def extract(): return 1

    @task
    def check(): raise ValueError("bad data")

    @task
    def fan(x): return x

    @task
    def fan_fails(x):
        if x == 2:
            raise ValueError("two")
        return x

    extract() >> check()
    fan.expand(x=[1])
    fan.override(task_id="fan_two").expand(x=[1, 2])
    fan_fails.expand(x=[1, 2])
"""

DOWNSTREAM = """
from datetime import timedelta
from airflow.sdk import DAG, task
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

with DAG("downstream_{name}", schedule="@daily"):
    wait = ExternalTaskSensor(task_id="wait", external_dag_id="upstream", poke_interval=1, timeout=3, {args})

    @task
    def load(): return 2

    wait >> load()
"""


def _run_downstream(dag_file, run_file, name, args, when=DATE):
    result = run_file(dag_file(DOWNSTREAM.format(name=name, args=args), f"{name}.py"), logical_date=when)
    return {t.task_id: (str(t.state), t.error) for t in result.tasks}


@pytest.fixture
def upstream_ran(dag_file, run_file):
    run_file(dag_file(UPSTREAM, "upstream.py"), logical_date=DATE)


@pytest.mark.parametrize(
    ("name", "args", "wait", "error"),
    [
        # allowed_states reached (default: success) -> done
        ("task_done", "external_task_id='extract'", "success", None),
        # the DAG run itself: failed is not in allowed_states -> pokes until its timeout
        ("dag_not_done", "allowed_states=['success']", "failed", "AirflowSensorTimeout"),
        # the run's state in allowed_states
        ("dag_failed_ok", "allowed_states=['failed']", "success", None),
        # failed_states checked first: ExternalTaskFailedError
        (
            "task_failed",
            "external_task_ids=['extract', 'check'], failed_states=['failed']",
            "failed",
            "ExternalTaskFailedError: Some of the external tasks ['extract', 'check'] in DAG upstream failed.",
        ),
        # ... with soft_fail: skipped
        ("soft", "external_task_id='check', failed_states=['failed'], soft_fail=True", "skipped", None),
        # skipped_states: skipped
        ("skip", "external_task_id='check', skipped_states=['failed']", "skipped", None),
        # a mapped task: each instance counts (get_ti_count); one instance in allowed_states -> done
        ("mapped_one", "external_task_id='fan'", "success", None),
        # ... two: 2 / 1 task is not the one logical date asked for, so never done (Airflow 3.3's arithmetic)
        ("mapped_two", "external_task_id='fan_two'", "failed", "AirflowSensorTimeout"),
        # ... one instance in failed_states: ExternalTaskFailedError
        (
            "mapped_failed",
            "external_task_id='fan_fails', failed_states=['failed']",
            "failed",
            "ExternalTaskFailedError: Some of the external tasks ['fan_fails'] in DAG upstream failed.",
        ),
        # the DAG run failed, failed_states on the run: ExternalDagFailedError
        (
            "dag_failed",
            "failed_states=['failed']",
            "failed",
            "ExternalDagFailedError: The external DAG upstream failed.",
        ),
    ],
)
def test_the_sensor_reads_the_other_runs_states(upstream_ran, dag_file, run_file, name, args, wait, error):
    states = _run_downstream(dag_file, run_file, name, args)
    assert states["wait"][0] == wait
    if error:
        assert error in states["wait"][1]
    assert states["load"][0] == (
        "success" if wait == "success" else ("skipped" if wait == "skipped" else "upstream_failed")
    )


def test_execution_delta_reads_an_earlier_run_and_a_missing_run_is_not_done(upstream_ran, dag_file, run_file):
    later = datetime(2026, 2, 2, tzinfo=UTC)
    found = _run_downstream(
        dag_file, run_file, "delta", "external_task_id='extract', execution_delta=timedelta(days=1)", later
    )
    assert found["wait"][0] == "success"
    missing = _run_downstream(dag_file, run_file, "missing", "external_task_id='extract'", later)
    assert missing["wait"][0] == "failed" and "AirflowSensorTimeout" in missing["wait"][1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("external_task_id='a', external_task_ids=['b']", "Only one of `external_task_id` or `external_task_ids`"),
        ("allowed_states=['success'], failed_states=['success']", "DuplicateStateError"),
        ("external_task_id='a', allowed_states=['finished']", "Valid values for `allowed_states`"),
        ("execution_date_fn=lambda d: d", "execution_date_fn is not supported by airstep (the run it reads"),
        ("external_task_group_id='g'", "external_task_group_id is not supported by airstep"),
        ("external_task_id='{{ params.t }}'", "cannot be a template in airstep"),
    ],
)
def test_what_airstep_cannot_read_is_refused_where_it_is_written(dag_file, args, message):
    loaded = load_dag_file(str(dag_file(DOWNSTREAM.format(name="refused", args=args))))
    [error] = loaded.errors
    assert message in error.message and error.line == 7


def test_the_other_run_is_found_by_its_logical_date_whatever_offset_started_it(dag_file, run_file):
    """Airflow compares instants: a run triggered at 01:00+01:00 is the run at 00:00Z (run ids are in UTC)."""
    started = run_file(
        dag_file(UPSTREAM, "upstream.py"), logical_date=datetime.fromisoformat("2026-02-01T01:00:00+01:00")
    )
    assert started.run_id == "manual__2026-02-01T00:00:00+00:00"
    assert _run_downstream(dag_file, run_file, "offset", "external_task_id='extract'")["wait"][0] == "success"
