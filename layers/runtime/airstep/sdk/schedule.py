"""Schedules as Airflow 3 reads them, reduced to one declarative form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from airstep.contract import Schedule, ScheduleKind
from airstep.errors import DagDefinitionError, SourceLocation
from airstep.sdk.assets import asset_schedule
from airstep.timetables import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
)

# Airflow's cron presets. "@once" and "@continuous" are not cron.
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def parse_schedule(schedule: Any, location: SourceLocation) -> Schedule | None:
    """Turn `schedule=` into the DAG's Schedule (the one place a Schedule is built from user input).

    A cron string or preset becomes Airflow 3's CronTriggerTimetable and a ``timedelta``
    DeltaTriggerTimetable (the run's logical date is the fire time); the data-interval timetables are
    taken when asked for (airstep.timetables).
    """
    if schedule is None:
        return None
    if (condition := asset_schedule(schedule)) is not None:
        return Schedule(ScheduleKind.ASSETS, assets=condition.to_condition())
    if isinstance(schedule, CronDataIntervalTimetable):
        cron, preset = _cron(schedule.cron, location)
        return Schedule(ScheduleKind.CRON_INTERVAL, cron, preset, timezone=schedule.timezone or None)
    if isinstance(schedule, CronTriggerTimetable):
        cron, preset = _cron(schedule.cron, location)
        interval = _seconds("interval", schedule.interval, location, zero=True)
        return Schedule(ScheduleKind.CRON_TRIGGER, cron, preset, timezone=schedule.timezone or None, interval=interval)
    if isinstance(schedule, DeltaTriggerTimetable):
        seconds = _seconds("delta", schedule.delta, location)
        interval = _seconds("interval", schedule.interval, location, zero=True)
        return Schedule(ScheduleKind.DELTA_TRIGGER, seconds=seconds, interval=interval)
    if isinstance(schedule, DeltaDataIntervalTimetable):
        return Schedule(ScheduleKind.DELTA_INTERVAL, seconds=_seconds("delta", schedule.delta, location))
    if isinstance(schedule, timedelta):
        return Schedule(ScheduleKind.DELTA_TRIGGER, seconds=_seconds("timedelta", schedule, location))
    if not isinstance(schedule, str):
        raise DagDefinitionError(
            f"schedule must be None, a cron string, a preset such as '@daily', a timedelta, a timetable, "
            f"or assets (Asset, a list of them, AssetAll, AssetAny); "
            f"got {type(schedule).__name__}",
            location,
        )
    text = schedule.strip()
    if text == "@once":
        return Schedule(ScheduleKind.ONCE)
    if text == "@continuous":
        raise DagDefinitionError("schedule '@continuous' is not supported by airstep", location)
    return Schedule(ScheduleKind.CRON_TRIGGER, *_cron(text, location))


def _seconds(name: str, value: Any, location: SourceLocation | None, zero: bool = False) -> float | None:
    """A schedule's timedelta in seconds: positive (a trigger timetable's interval may be zero: None)."""
    if not isinstance(value, timedelta):
        raise DagDefinitionError(f"schedule {name} must be a timedelta, got {type(value).__name__}", location)
    seconds = value.total_seconds()
    if seconds < 0 or (seconds == 0 and not zero):
        raise DagDefinitionError(f"schedule {name} must be positive, got {value!r}", location)
    return seconds or None


def _cron(text: str, location: SourceLocation) -> tuple[str, str | None]:
    """A cron expression or preset as (five-field cron, the preset's name or None)."""
    text = text.strip()
    if text.startswith("@"):
        if text not in CRON_PRESETS:
            known = ", ".join(["@once", *CRON_PRESETS])
            raise DagDefinitionError(f"unknown schedule preset {text!r} (known: {known})", location)
        return CRON_PRESETS[text], text
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise DagDefinitionError(
            f"schedule {text!r} is not a valid cron expression "
            "(five fields: minute hour day-of-month month day-of-week)",
            location,
        )
    return text, None


def next_interval_end(schedule: Schedule, current_end: datetime, zone: str = "UTC") -> datetime | None:
    """The end of the data interval that follows one ending at `current_end` (Airflow's
    `next_dagrun_info` from it): the next cron time, or `current_end` plus the delta; None for
    `@once`, which has no next interval."""
    if schedule.kind is ScheduleKind.ONCE:
        return None
    if schedule.kind in (ScheduleKind.DELTA_TRIGGER, ScheduleKind.DELTA_INTERVAL):
        assert schedule.seconds is not None
        return current_end + timedelta(seconds=schedule.seconds)
    local = current_end.astimezone(ZoneInfo(zone))
    return croniter(schedule.cron, local).get_next(datetime).astimezone(UTC)
