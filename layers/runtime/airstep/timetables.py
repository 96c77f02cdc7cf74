"""Airflow 3's timetables for `schedule=`, for DAGs that ask for a specific one.

A bare cron string or preset already means `CronTriggerTimetable`; pass `CronDataIntervalTimetable`
to get Airflow 2's data intervals (the run for [start, end) fires at end; logical date = start).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CronTriggerTimetable:
    """Runs fire at each cron time; the logical date is the fire time, the data interval is empty."""

    cron: str
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class CronDataIntervalTimetable:
    """Each run covers one cron interval and fires when it ends (Airflow 2's cron behaviour)."""

    cron: str
    timezone: str | None = None
