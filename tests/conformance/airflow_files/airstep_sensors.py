"""Written for Airflow 3.3 (unmodified under airstep): sensors. A TaskFlow sensor done at its third
poke with a PokeReturnValue, a BaseSensorOperator subclass, timeouts in both modes with and without
soft_fail (no retry after a timeout), a failing poke retried, silent_fail and never_fail."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta

import pendulum
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, BaseSensorOperator, PokeReturnValue, task


class Ready(BaseSensorOperator):
    def poke(self, context):
        return True


def broken():
    raise ValueError("the poke itself fails")


with DAG("airstep_sensors", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task.sensor(poke_interval=1, timeout=30)
    def third_poke(run_id=None):
        path = os.path.join(tempfile.gettempdir(), "airstep_sensor_pokes_" + "".join(c for c in run_id if c.isalnum()))
        pokes = int(open(path).read()) + 1 if os.path.exists(path) else 1
        with open(path, "w") as counter:
            counter.write(str(pokes))
        if pokes >= 3:
            os.remove(path)  # a later run of the same run id starts again
        return PokeReturnValue(is_done=pokes >= 3, xcom_value=f"done at poke {pokes}")

    @task
    def after(value):
        return value

    after(third_poke())
    Ready(task_id="ready") >> PythonSensor(task_id="after_ready", python_callable=lambda: True, poke_interval=1)

    soft = PythonSensor(task_id="soft", python_callable=lambda: False, poke_interval=1, timeout=2, soft_fail=True)
    soft >> PythonSensor(task_id="after_soft", python_callable=lambda: True)
    strict = PythonSensor(
        task_id="strict",
        python_callable=lambda: False,
        poke_interval=1,
        timeout=timedelta(seconds=2),
        mode="reschedule",
        retries=2,
    )
    strict >> PythonSensor(task_id="after_strict", python_callable=lambda: True)
    PythonSensor(task_id="failing", python_callable=broken, retries=1, retry_delay=0, poke_interval=1)
    PythonSensor(task_id="silent", python_callable=broken, silent_fail=True, poke_interval=1, timeout=1)
    PythonSensor(task_id="never", python_callable=broken, never_fail=True)
