"""Airflow's schedule semantics at run time: the run a schedule's fire time starts, and manual runs.

Which timetable a DAG gets (as in Airflow 3):

- a cron string or preset: CronTriggerTimetable. A run fires at each cron time; its logical date is
  that time and its data interval is empty ([t, t]).
- `CronDataIntervalTimetable(cron)`: Airflow 2's behaviour. The run covering [prev, t) fires at t;
  logical date = data_interval_start = prev.
- a `timedelta`: DeltaDataIntervalTimetable. The run covering [t - delta, t) fires at t.
- `"@once"`: one run at start_date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from airstep.contract import DagRun, Schedule, ScheduleKind
from airstep.states import RunType


def scheduled_run(dag_id: str, schedule: Schedule, fired_at: datetime, zone: str = "UTC") -> DagRun:
    """The run a schedule firing at `fired_at` starts (Airflow's logical date and data interval)."""
    fired = fired_at.astimezone(UTC).replace(microsecond=0)
    if schedule.kind in (ScheduleKind.CRON_TRIGGER, ScheduleKind.ONCE):
        start = end = fired
    elif schedule.kind is ScheduleKind.CRON_INTERVAL:
        local = fired.astimezone(ZoneInfo(zone))
        previous = croniter(schedule.cron, local).get_prev(datetime)
        start, end = previous.astimezone(UTC), fired
    else:
        assert schedule.seconds is not None
        start, end = fired - timedelta(seconds=schedule.seconds), fired
    return DagRun(dag_id, f"{RunType.SCHEDULED}__{start.isoformat()}", RunType.SCHEDULED, start, start, end)


def manual_run(
    dag_id: str, logical_date: datetime, schedule: Schedule | None, conf: dict[str, Any] | None = None
) -> DagRun:
    """A manual run at `logical_date` (Airflow: the interval the schedule would give that date)."""
    # in UTC, as Airflow keeps dates: a run id names its logical date one way only
    when = logical_date.astimezone(UTC) if logical_date.tzinfo else logical_date.replace(tzinfo=UTC)
    end = when
    if schedule is not None and schedule.kind is ScheduleKind.DELTA_INTERVAL:
        assert schedule.seconds is not None
        end = when + timedelta(seconds=schedule.seconds)
    return DagRun(dag_id, f"{RunType.MANUAL}__{when.isoformat()}", RunType.MANUAL, when, when, end, dict(conf or {}))
