"""Deploy time: a DAG's schedule as an EventBridge Scheduler expression."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter

from airstep.contract import Schedule, ScheduleKind


class ScheduleError(ValueError):
    """A schedule EventBridge Scheduler cannot express."""


def scheduler_expression(schedule: Schedule, start_date: str | None) -> str:
    """The EventBridge Scheduler expression for a DAG's schedule."""
    if schedule.kind in (ScheduleKind.CRON_TRIGGER, ScheduleKind.CRON_INTERVAL):
        assert schedule.cron is not None
        return eventbridge_cron(schedule.cron)
    if schedule.kind in (ScheduleKind.DELTA_TRIGGER, ScheduleKind.DELTA_INTERVAL):
        seconds = int(schedule.seconds or 0)
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds % size == 0:
                count = seconds // size
                return f"rate({count} {unit}{'s' if count > 1 else ''})"
        raise ScheduleError(f"a timedelta schedule must be whole minutes for EventBridge, got {seconds} s")
    if not start_date:
        raise ScheduleError("schedule '@once' needs a start_date")
    when = datetime.fromisoformat(start_date).astimezone(UTC)
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"


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
