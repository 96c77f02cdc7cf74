"""Airflow's schedule semantics on EventBridge Scheduler: expressions, logical dates, run ids.

Which timetable a DAG gets (as in Airflow 3):

- a cron string or preset: CronTriggerTimetable. A run fires at each cron time; its logical date is
  that time and its data interval is empty ([t, t]).
- `CronDataIntervalTimetable(cron)`: Airflow 2's behaviour. The run covering [prev, t) fires at t;
  logical date = data_interval_start = prev.
- a `timedelta`: DeltaDataIntervalTimetable. The run covering [t - delta, t) fires at t.
- `"@once"`: one run at start_date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

_EXECUTION_NAME_BAD = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/]")


class ScheduleError(ValueError):
    """A schedule EventBridge Scheduler cannot express."""


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime

    def execution_input(
        self, dag_id: str, conf: dict[str, Any] | None = None, run_type: str = "scheduled"
    ) -> dict[str, Any]:
        return {
            "dag_id": dag_id,
            "run_id": self.run_id,
            "run_type": run_type,
            "logical_date": self.logical_date.isoformat(),
            "data_interval_start": self.data_interval_start.isoformat(),
            "data_interval_end": self.data_interval_end.isoformat(),
            "conf": conf or {},
        }


def execution_name(run_id: str) -> str:
    """Step Functions execution names forbid ':' and friends and stop at 80 characters; the mapping
    is deterministic, so a duplicate start of the same run reuses the same name."""
    return _EXECUTION_NAME_BAD.sub("-", run_id)[:80]


def scheduled_run(schedule: dict[str, Any], fired_at: datetime, zone: str = "UTC") -> ScheduledRun:
    """The run a schedule firing at `fired_at` starts (Airflow's logical date and data interval)."""
    fired = fired_at.astimezone(UTC).replace(microsecond=0)
    kind = schedule["kind"]
    if kind in ("cron_trigger", "once"):
        start = end = fired
    elif kind == "cron_interval":
        local = fired.astimezone(ZoneInfo(zone))
        previous = croniter(schedule["cron"], local).get_prev(datetime)
        start, end = previous.astimezone(UTC), fired
    elif kind == "delta_interval":
        start, end = fired - timedelta(seconds=schedule["seconds"]), fired
    else:
        raise ScheduleError(f"unknown schedule kind {kind!r}")
    return ScheduledRun(f"scheduled__{start.isoformat()}", start, start, end)


def manual_run(logical_date: datetime, schedule: dict[str, Any] | None) -> ScheduledRun:
    """A manual run at `logical_date` (Airflow: the interval the schedule would give that date)."""
    when = logical_date if logical_date.tzinfo else logical_date.replace(tzinfo=UTC)
    end = when
    if schedule and schedule.get("kind") == "delta_interval":
        end = when + timedelta(seconds=schedule["seconds"])
    return ScheduledRun(f"manual__{when.isoformat()}", when, when, end)


def scheduler_expression(schedule: dict[str, Any], start_date: str | None) -> str:
    """The EventBridge Scheduler expression for a DAG's schedule record."""
    kind = schedule["kind"]
    if kind in ("cron_trigger", "cron_interval"):
        return eventbridge_cron(schedule["cron"])
    if kind == "delta_interval":
        seconds = int(schedule["seconds"])
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds % size == 0:
                count = seconds // size
                return f"rate({count} {unit}{'s' if count > 1 else ''})"
        raise ScheduleError(f"a timedelta schedule must be whole minutes for EventBridge, got {seconds} s")
    if kind == "once":
        if not start_date:
            raise ScheduleError("schedule '@once' needs a start_date")
        when = datetime.fromisoformat(start_date).astimezone(UTC)
        return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"
    raise ScheduleError(f"unknown schedule kind {kind!r}")


def eventbridge_cron(cron: str) -> str:
    """Five-field cron (Airflow) -> EventBridge `cron(min hour dom month dow year)`.

    EventBridge numbers weekdays 1-7 from Sunday and needs `?` in day-of-month or day-of-week.
    Cron runs a job when *either* restricted day field matches; EventBridge cannot say that.
    """
    minute, hour, dom, month, dow = cron.split()
    if dom != "*" and dow != "*":
        raise ScheduleError(
            f"cron {cron!r} restricts both day-of-month and day-of-week (cron means either); "
            "EventBridge Scheduler can express only one: split it into two DAGs or schedules"
        )
    if dow == "*":
        return f"cron({minute} {hour} {dom} {month} ? *)"
    days = sorted({(int(d) % 7) + 1 for d in croniter.expand(f"* * * * {dow}")[0][4]})
    return f"cron({minute} {hour} ? {month} {','.join(map(str, days))} *)"
