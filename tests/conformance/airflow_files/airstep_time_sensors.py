"""Written for Airflow 3.3 (unmodified under airstep): the time sensors, with moments in the past
(done at the first poke) and in the future (the timeout skips them with soft_fail)."""

from __future__ import annotations

import datetime

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensor
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.providers.standard.sensors.weekday import DayOfWeekSensor
from airflow.sdk import DAG

EVERY_DAY = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

with DAG("airstep_time_sensors", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    DateTimeSensor(task_id="past_moment", target_time="{{ macros.ds_add(ds, -1) }}", poke_interval=1)
    DateTimeSensor(task_id="past_datetime", target_time=datetime.datetime(2020, 1, 1), poke_interval=1)
    DateTimeSensor(
        task_id="future_moment", target_time="2999-01-01T00:00:00", poke_interval=1, timeout=1, soft_fail=True
    )
    TimeDeltaSensor(task_id="delta_passed", delta=datetime.timedelta(minutes=5), poke_interval=1)
    TimeDeltaSensor(
        task_id="delta_ahead", delta=datetime.timedelta(days=365_000), poke_interval=1, timeout=1, soft_fail=True
    )
    DayOfWeekSensor(task_id="any_day", week_day=EVERY_DAY, poke_interval=1)
    DayOfWeekSensor(task_id="logical_thursday", week_day="Thursday", use_task_logical_date=True, poke_interval=1)
    DayOfWeekSensor(
        task_id="logical_monday",
        week_day="Monday",
        use_task_logical_date=True,
        poke_interval=1,
        timeout=1,
        soft_fail=True,
    )
