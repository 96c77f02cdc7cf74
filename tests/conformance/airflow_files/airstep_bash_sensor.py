"""Written for Airflow 3.3 (unmodified under airstep): BashSensor. Done at exit 0; without
retry_exit_code any other code pokes again until the timeout; with it, that code pokes again and any
other fails the task at once (no retry)."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.sensors.bash import BashSensor
from airflow.sdk import DAG

with DAG("airstep_bash_sensor", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    done = BashSensor(task_id="done", bash_command="echo ready; exit 0", poke_interval=1)
    waits = BashSensor(task_id="waits", bash_command="exit 3", poke_interval=1, timeout=2, soft_fail=True)
    retried = BashSensor(task_id="retried", bash_command="exit 3", retry_exit_code=3, poke_interval=1, timeout=2)
    fails = BashSensor(task_id="fails", bash_command="exit 4", retry_exit_code=3, poke_interval=1, retries=2)
