"""Sensors beyond what Airflow's answers pin (tests/conformance/airflow_files/airstep_sensors.py): what
a sensor costs (one runner and one executor invocation per poke, a Wait state between pokes and no
invocation while it waits), FileSensor, and how the runner paces pokes within a run's history."""

from __future__ import annotations

from airstep.model import SensorPolicy
from airstep.runtime.task_runner import next_poke_interval
from airstep_compiler.compile import max_pokes
from helpers import KeepMachines, entered_states, executions

COUNTED = """
import os, tempfile
from airstep import DAG, task

with DAG("counted"):
    @task.sensor(poke_interval=1, timeout=60)
    def third(run_id=None):
        path = os.path.join(tempfile.gettempdir(), "airstep_counted_" + "".join(c for c in run_id if c.isalnum()))
        pokes = int(open(path).read()) + 1 if os.path.exists(path) else 1
        open(path, "w").write(str(pokes))
        if pokes >= 3:
            os.remove(path)
        return pokes >= 3

    third()
"""


def test_a_poke_is_one_invocation_and_the_wait_between_pokes_is_a_wait_state(dag_file, run_file, engine, monkeypatch):
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    engine.session.calls = []
    result = run_file(dag_file(COUNTED))
    [third] = result.tasks
    assert (str(third.state), third.try_number) == ("success", 1)
    assert 2 <= third.duration < 10  # two waits of one second
    invokes = [c.params["FunctionName"] for c in engine.session.calls if c.operation == "Invoke"]
    assert invokes.count(engine.names.execute_task) == 3  # one executor invocation per poke
    entered = entered_states(engine.sfn, executions(engine.sfn, "counted")[0]["executionArn"])
    assert entered.count("third") == 3 and entered.count("third@sleep") == 2 and entered.count("third@poked") == 3


TIMED = """
import datetime
from airflow.providers.standard.sensors.date_time import DateTimeSensor
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airstep import DAG

class Stricter(DateTimeSensor):
    def poke(self, context):
        return super().poke(context)

with DAG("timed"):
    moment = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3)).isoformat()
    DateTimeSensor(task_id="at_moment", target_time=moment, poke_interval=1, timeout=60)
    TimeDeltaSensor(task_id="too_late", delta=datetime.timedelta(days=1), poke_interval=1, timeout=2, soft_fail=True)
    TimeDeltaSensor(task_id="times_out", delta=datetime.timedelta(days=1), poke_interval=1, timeout=2)
    Stricter(task_id="pokes_itself", target_time=moment, poke_interval=1, timeout=60)
"""


def test_a_time_sensor_pokes_once_and_waits_until_its_moment_in_one_wait_state(dag_file, run_file, engine, monkeypatch):
    """A time sensor's first poke names its moment; one Wait lasts until it (or just past the
    timeout), and the runner ends the try without poking again. A subclass that overrides `poke`
    pokes at its interval."""
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    engine.session.calls = []
    result = run_file(dag_file(TIMED))
    tasks = {t.task_id: t for t in result.tasks}
    assert {t: (str(ti.state), ti.try_number) for t, ti in tasks.items()} == {
        "at_moment": ("success", 1),
        "too_late": ("skipped", 1),
        "times_out": ("failed", 1),
        "pokes_itself": ("success", 1),
    }
    assert tasks["times_out"].error.startswith("AirflowSensorTimeout: Sensor has timed out")
    assert 1.5 < tasks["at_moment"].duration < 10
    entered = entered_states(engine.sfn, executions(engine.sfn, "timed")[0]["executionArn"])
    for timed in ("at_moment", "too_late", "times_out"):  # one poke, one wait, and the end of the try
        assert (entered.count(timed), entered.count(f"{timed}@sleep")) == (2, 1), timed
    assert entered.count("pokes_itself@sleep") >= 2
    executed = [
        c.params["Payload"]
        for c in engine.session.calls
        if c.operation == "Invoke" and c.params["FunctionName"] == engine.names.execute_task
    ]
    assert sum(b'"at_moment"' in payload for payload in executed) == 2  # the first poke, and the one at its moment


def test_file_sensor_waits_for_a_file_and_soft_fails_without_one(dag_file, run_file, tmp_path):
    path = dag_file(
        f"""
        from airstep import DAG, task
        from airflow.providers.standard.sensors.filesystem import FileSensor

        with DAG("files"):
            @task
            def land():
                open("{tmp_path}/landed.csv", "w").write("a,b")

            land() >> FileSensor(task_id="landed", filepath="{tmp_path}/*.csv", poke_interval=1)
            FileSensor(
                task_id="missing", filepath="{tmp_path}/none/*.parquet", poke_interval=1, timeout=1, soft_fail=True
            )
        """
    )
    result = run_file(path)
    assert {t.task_id: str(t.state) for t in result.tasks} == {
        "land": "success",
        "landed": "success",
        "missing": "skipped",
    }


LONG = """
import os, tempfile
from airstep import DAG, task

with DAG("long_wait"):
    @task.sensor(poke_interval=1, timeout=30, retries=1)
    def seventh(run_id=None):
        path = os.path.join(tempfile.gettempdir(), "airstep_seventh_" + "".join(c for c in run_id if c.isalnum()))
        pokes = int(open(path).read()) + 1 if os.path.exists(path) else 1
        open(path, "w").write(str(pokes))
        if pokes >= 7:
            os.remove(path)
        return pokes >= 7

    @task
    def after():
        return "after"

    seventh() >> after()
"""


def test_a_sensor_whose_pokes_would_not_fit_the_runs_history_loops_in_child_executions(
    dag_file, run_file, engine, monkeypatch
):
    """Compiled for a history of 80 events, the sensor's 32 pokes do not fit the run's: its loop
    runs in child executions of 3 pokes per try each (its one retry counted), at its poke_interval
    throughout, one try across them; the run's own history grows by a handful of events per child."""
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    engine.session.calls = []
    result = run_file(dag_file(LONG), history_events=80)
    assert {t.task_id: (str(t.state), t.try_number) for t in result.tasks} == {
        "seventh": ("success", 1),
        "after": ("success", 1),
    }
    seventh = next(t for t in result.tasks if t.task_id == "seventh")
    assert 6 <= seventh.duration < 15  # six waits of one second, none stretched
    invokes = [c.params["FunctionName"] for c in engine.session.calls if c.operation == "Invoke"]
    assert invokes.count(engine.names.execute_task) == 7 + 1  # seven pokes and `after`
    [execution] = executions(engine.sfn, "long_wait")
    entered = entered_states(engine.sfn, execution["executionArn"])
    assert entered.count("seventh@lap") == 3 and "seventh@sleep" not in entered  # three children: 3 + 3 + 1 pokes
    history = engine.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    assert sum(e["type"] == "MapRunStarted" for e in history) == 3


def test_max_pokes_counts_the_pokes_until_the_timeout():
    week = SensorPolicy(poke_interval=60, timeout=7 * 24 * 3600)
    assert max_pokes(week) == 10_082
    assert max_pokes(SensorPolicy(poke_interval=60, timeout=3600, waits_for_moment=True)) == 2


def test_exponential_backoff_doubles_with_jitter_within_max_wait_and_the_timeout():
    sensor = SensorPolicy(poke_interval=10, timeout=1_000, exponential_backoff=True, max_wait=100)
    waits = [next_poke_interval("d", "s", sensor, "2026-01-01T00:00:00+00:00", poke, 0) for poke in range(1, 8)]
    for poke, wait in zip(range(1, 8), waits, strict=True):
        low = max(int(10 * 2 ** (poke - 2)), 1)
        assert min(low, 100) <= wait < 2 * low or wait == 100
    assert next_poke_interval("d", "s", sensor, "t", 20, 990) == 10  # never past the timeout
