"""Pausing a deployed DAG: its EventBridge schedule is disabled (it starts nothing) and enabled again
on unpause. EventBridge Scheduler's UpdateSchedule replaces a schedule whole, so the schedule is read
and written back with only its state changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# What GetSchedule answers that UpdateSchedule takes back unchanged.
_UPDATABLE = (
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "Target",
    "StartDate",
    "EndDate",
    "Description",
    "KmsKeyArn",
    "ActionAfterCompletion",
)


def set_schedule_state(scheduler: Any, group: str, name: str, *, enabled: bool) -> None:
    """Enable or disable the DAG's schedule, keeping everything else about it."""
    current = scheduler.get_schedule(Name=name, GroupName=group)
    kept = {field: current[field] for field in _UPDATABLE if current.get(field) is not None}
    if "StartDate" in kept and kept["StartDate"] <= datetime.now(UTC):  # EventBridge refuses a past one
        del kept["StartDate"]
    scheduler.update_schedule(Name=name, GroupName=group, State="ENABLED" if enabled else "DISABLED", **kept)
