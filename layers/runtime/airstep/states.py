"""Airflow's states of task instances and runs, and the kinds of runs (Airflow's names and values)."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """A task instance's state (Airflow's `TaskInstanceState`, the values airstep records)."""

    RUNNING = "running"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"  # a sensor between pokes (mode="reschedule")
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


class RunState(StrEnum):
    """A DAG run's state (Airflow's `DagRunState`)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class RunType(StrEnum):
    """How a run was started (Airflow's `DagRunType`)."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    BACKFILL = "backfill"
    ASSET_TRIGGERED = "asset_triggered"
    OPERATOR_TRIGGERED = "operator_triggered"  # by a TriggerDagRunOperator (its run id: manual__...)


class TriggeredBy(StrEnum):
    """What started a run (Airflow's `DagRunTriggeredByType`), as its record says."""

    CLI = "cli"  # `airstep run`, `airstep trigger`
    TIMETABLE = "timetable"
    BACKFILL = "backfill"
    ASSET = "asset"
    OPERATOR = "operator"  # a TriggerDagRunOperator


TRIGGERED_BY = {
    RunType.MANUAL: TriggeredBy.CLI,
    RunType.SCHEDULED: TriggeredBy.TIMETABLE,
    RunType.BACKFILL: TriggeredBy.BACKFILL,
    RunType.ASSET_TRIGGERED: TriggeredBy.ASSET,
    RunType.OPERATOR_TRIGGERED: TriggeredBy.OPERATOR,
}


FINISHED = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED})
FAILED_STATES = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})
