"""Airflow 3's timetables for `schedule=`, for DAGs that ask for a specific one.

A bare cron string or preset already means `CronTriggerTimetable`, and a `timedelta`
`DeltaTriggerTimetable` (Airflow 3's defaults); pass `CronDataIntervalTimetable` or
`DeltaDataIntervalTimetable` to get Airflow 2's data intervals (the run for [start, end) fires at end;
logical date = start). A trigger timetable's `interval` gives its runs the data interval
[fire time - interval, fire time] (the logical date is then its start, as in Airflow).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class CronTriggerTimetable:
    """Runs fire at each cron time; the logical date is the fire time, the data interval is empty."""

    cron: str
    timezone: str | None = None
    interval: timedelta = timedelta()


@dataclass(frozen=True, slots=True)
class CronDataIntervalTimetable:
    """Each run covers one cron interval and fires when it ends (Airflow 2's cron behaviour)."""

    cron: str
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class DeltaTriggerTimetable:
    """Runs fire every `delta` from the start date; the logical date is the fire time."""

    delta: timedelta
    interval: timedelta = timedelta()


@dataclass(frozen=True, slots=True)
class DeltaDataIntervalTimetable:
    """Each run covers one `delta` and fires when it ends (Airflow 2's timedelta behaviour)."""

    delta: timedelta
