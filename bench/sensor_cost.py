"""What a sensor costs while it waits: a sensor that is done after `--seconds` (default 60) with
`poke_interval` 10, run on the local engine (moto waits in real time), first a poking sensor
(`@task.sensor`), then a time sensor (`DateTimeSensor`, the moment `--seconds` ahead). Prints the
Lambda invocations (task runner, executor) and the execution history events each wait took.

Run: python bench/sensor_cost.py [--seconds 60] [--poke-interval 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep_compiler import DagSource
from airstep_local.engine import LocalEngine, RunRequest

SENSOR_DAG = """
import time
from airstep import DAG, task

with DAG("waits"):
    @task.sensor(poke_interval={poke_interval}, timeout=3600)
    def ready(dag_run=None):
        return time.time() >= {done_at}

    ready()
"""

TIME_SENSOR_DAG = """
from airflow.providers.standard.sensors.date_time import DateTimeSensor
from airstep import DAG

with DAG("waits"):
    DateTimeSensor(task_id="ready", target_time="{done_at_iso}", poke_interval={poke_interval}, timeout=3600)
"""


class _KeepMachines:
    """The engine's Step Functions client, except that it keeps state machines (to read the history)."""

    def __init__(self, sfn: object) -> None:
        self._sfn = sfn

    def __getattr__(self, name: str) -> object:
        return (lambda **_: None) if name == "delete_state_machine" else getattr(self._sfn, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--poke-interval", type=float, default=10)
    options = parser.parse_args()
    for kind, source in (("poking sensor", SENSOR_DAG), ("time sensor", TIME_SENSOR_DAG)):
        done_at = time.time() + options.seconds
        text = source.format(
            poke_interval=options.poke_interval,
            done_at=done_at,
            done_at_iso=datetime.fromtimestamp(done_at, UTC).isoformat(),
        )
        seconds, state, runner, executor, events = measure(text)
        print(
            f"{kind} done after {options.seconds:g} s (poke_interval {options.poke_interval:g} s): "
            f"run {seconds:.1f} s, "
            f"state {state}; {executor} executor and {runner} task-runner invocations (finalize among them), "
            f"{events} execution history events in all"
        )


def measure(source: str) -> tuple[float, str, int, int, int]:
    """Run the DAG once: seconds, the sensor's state, runner and executor invocations, history events."""
    with tempfile.TemporaryDirectory() as tmp, LocalEngine() as engine:
        path = Path(tmp) / "waits.py"
        path.write_text(source)
        loaded = load_dag_file(str(path))
        model = DagModel.from_dag(loaded.dags["waits"])
        engine.session.calls = []
        engine.sfn = _KeepMachines(engine.sfn)  # type: ignore[assignment]
        started = time.monotonic()
        result = engine.run(model, DagSource(str(path), loaded.version), RunRequest())
        seconds = time.monotonic() - started
        invokes = [c.params["FunctionName"] for c in engine.session.calls if c.operation == "Invoke"]
        machine = next(m for m in engine.sfn.list_state_machines()["stateMachines"] if m["name"] == "waits")
        execution = engine.sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"][0]
        events = engine.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    [ready] = result.tasks
    runner = invokes.count(engine.names.run_task)
    executor = invokes.count(engine.names.execute_task)
    return seconds, str(ready.state), runner, executor, len(events)


if __name__ == "__main__":
    main()
