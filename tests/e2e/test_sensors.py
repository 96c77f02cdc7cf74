"""Sensors beyond what Airflow's answers pin (tests/conformance/airflow_files/airstep_sensors.py): what
a sensor costs (one runner and one executor invocation per poke, a Wait state between pokes and no
invocation while it waits), FileSensor, and how the runner paces pokes within a run's history."""

from __future__ import annotations

from airstep.model import SensorPolicy
from airstep.runtime.task_runner import next_poke_interval, within_budget
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


def test_a_long_sensor_pokes_at_its_interval_then_paces_its_pokes_to_reach_its_timeout():
    week = SensorPolicy(poke_interval=60, timeout=7 * 24 * 3600)
    assert max_pokes(week) == 10_082
    budget = 1_388
    assert within_budget(60, week.timeout - 600, 10, budget) == 60  # early pokes keep Airflow's interval
    paced = within_budget(60, week.timeout - 40_000, 700, budget)
    assert paced == (week.timeout - 40_000) / (budget - 700 - 1)  # the pokes left reach the timeout
    assert within_budget(5, 30, budget - 1, budget) == 31  # the last one lands past the timeout


def test_exponential_backoff_doubles_with_jitter_within_max_wait_and_the_timeout():
    sensor = SensorPolicy(poke_interval=10, timeout=1_000, exponential_backoff=True, max_wait=100)
    waits = [next_poke_interval("d", "s", sensor, "2026-01-01T00:00:00+00:00", poke, 0) for poke in range(1, 8)]
    for poke, wait in zip(range(1, 8), waits, strict=True):
        low = max(int(10 * 2 ** (poke - 2)), 1)
        assert min(low, 100) <= wait < 2 * low or wait == 100
    assert next_poke_interval("d", "s", sensor, "t", 20, 990) == 10  # never past the timeout
