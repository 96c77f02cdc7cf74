"""Airflow's state names for task instances and runs."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    RUNNING = "running"
    UP_FOR_RETRY = "up_for_retry"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


FINISHED = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED})
FAILED_STATES = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})
