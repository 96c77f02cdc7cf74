"""Deadline alerts at run time, costing nothing until they fire.

A DAG with deadline alerts starts each run with an arming step: for each alert the task runner
computes the deadline as Airflow 3.3 does and creates a one-off EventBridge Scheduler schedule at it
(deleted by the service once it has fired) whose target is the task runner again. When it fires, the
deadline is decided once: met if the run had ended by then (Airflow deletes such a deadline), else
missed: recorded on the run, a metric counted, and the alert's callback called on the executor with
its kwargs and a context of the run and the deadline. A deadline already past when the run starts
is decided at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airstep.contract import DagRef, DagRun, deadline_event, parse_time
from airstep.model import DeadlinePolicy
from airstep.runtime.store import MetadataStore, RunKey, RunRecord
from airstep.runtime.store.deadline_alerts import ARMED, MET, MISSED, DeadlineRecord
from airstep.states import RunState

SCHEDULE_GROUP_ENV = "AIRSTEP_SCHEDULE_GROUP"
SCHEDULER_ROLE_ENV = "AIRSTEP_SCHEDULER_ROLE_ARN"
SCHEDULE_DLQ_ENV = "AIRSTEP_SCHEDULE_DLQ_ARN"
SCHEDULE_PREFIX = "deadline-"  # the task runner may create only these schedules in its group
SCHEDULE_MARGIN_SECONDS = 1  # a deadline already passed (or just about to): its schedule fires this soon
DEADLINE_MISSED = "deadline missed"  # a log line; the metric counts the same
MISSED_METRIC, NOT_ARMED_METRIC = "DeadlinesMissed", "DeadlinesNotArmed"  # template.yaml's alarms watch them


def deadline_moment(
    policy: DeadlinePolicy, run: DagRun, queued_at: datetime, now: datetime, durations: list[float]
) -> datetime | None:
    """When the run's deadline is, as Airflow 3.3 computes it (None: this run has none).

    `queued_at`: when the run was queued; `durations`: the DAG's latest successful runs' durations
    in seconds, newest first (AVERAGE_RUNTIME averages the first `max_runs`, and sets no deadline
    with fewer than `min_runs`, counting from when the run is created: `now`)."""
    interval = timedelta(seconds=policy.interval)
    if policy.reference == "queued_at":
        return queued_at + interval
    if policy.reference == "logical_date":
        return run.logical_date + interval if run.logical_date is not None else None
    if policy.reference == "fixed_datetime":
        assert policy.fixed is not None
        return datetime.fromisoformat(policy.fixed) + interval
    if policy.reference == "average_runtime":
        latest = durations[: policy.max_runs]
        if len(latest) < policy.min_runs:
            return None
        return now + timedelta(seconds=sum(latest) / len(latest)) + interval
    raise ValueError(f"unknown deadline reference {policy.reference!r}")


def successful_durations(store: MetadataStore, dag_id: str, limit: int) -> list[float]:
    """The durations of the DAG's latest successful runs, newest logical date first, as Airflow 3.3's
    AverageRuntimeDeadline reads them (serialization/definitions/deadline.py: successful runs only).
    Read from the DAG's latest runs by start (up to 10 x `limit`, at least 100)."""
    if limit <= 0:
        return []
    runs = store.runs_of_dag(dag_id, limit=max(limit * 10, 100))
    ended = [r for r in runs if r.state is RunState.SUCCESS and r.duration is not None]
    ended.sort(key=lambda r: r.logical_date or r.start_date or "", reverse=True)
    return [float(r.duration) for r in ended[:limit] if r.duration is not None]


def schedule_name(dag_id: str, run_id: str, clear_number: int, alert: int) -> str:
    """The deadline's one-off schedule: one per alert of each execution of a run (a retried arming
    step asks for the same one)."""
    digest = hashlib.sha256(f"{dag_id}\n{run_id}\n{clear_number}\n{alert}".encode()).hexdigest()[:40]
    return f"{SCHEDULE_PREFIX}{digest}"


def arm(
    store: MetadataStore,
    scheduler: Any,
    policies: tuple[DeadlinePolicy, ...],
    dag: DagRef,
    run: DagRun,
    execution: str | None,
    target_arn: str,
    now: datetime,
) -> list[str | None]:
    """Arm each of the run's deadlines: record it, then create its schedule (at its moment, or in a
    few seconds if that has passed). Safe to repeat: a retried step re-creates what is missing. After
    a clear, as in Airflow, only a DAGRUN_QUEUED_AT deadline still armed is computed again; a met or
    missed one stays as it was. Returns each alert's deadline (None: none for this execution); an
    alert that cannot be armed raises once the others are."""
    key = RunKey(run.dag_id, run.run_id)
    record = store.get_run(key)
    queued = parse_time(record.queued_at) if record is not None and record.queued_at else None
    needed = max((p.max_runs for p in policies if p.reference == "average_runtime"), default=0)
    durations = successful_durations(store, run.dag_id, needed)
    found: list[str | None] = []
    failed: Exception | None = None
    for alert, policy in enumerate(policies):
        try:
            found.append(
                _arm_one(
                    store, scheduler, policy, alert, dag, run, execution, target_arn, queued or now, now, durations
                )
            )
        except Exception as exc:  # noqa: BLE001 - the others are armed; the step fails after them
            found.append(None)
            failed = failed or exc
    if failed is not None:
        raise failed
    return found


def _arm_one(
    store: MetadataStore,
    scheduler: Any,
    policy: DeadlinePolicy,
    alert: int,
    dag: DagRef,
    run: DagRun,
    execution: str | None,
    target_arn: str,
    queued: datetime,
    now: datetime,
    durations: list[float],
) -> str | None:
    key = RunKey(run.dag_id, run.run_id)
    existing = store.deadline(key, alert)
    if existing is not None and existing.clear_number == run.clear_number:
        moment: datetime | None = datetime.fromisoformat(existing.deadline)  # this execution's, armed before
    elif existing is not None and not (policy.reference == "queued_at" and existing.state == ARMED):
        return None  # a clear keeps what the run's earlier execution armed, met or missed
    else:
        moment = deadline_moment(policy, run, queued, now, durations)
        if moment is None:
            return None
        store.arm_deadline(key, DeadlineRecord(alert, policy.name, moment.isoformat(), ARMED, run.clear_number))
    if existing is None or existing.state == ARMED:
        assert moment is not None
        at = max(moment, now + timedelta(seconds=SCHEDULE_MARGIN_SECONDS))  # a moment passed: at once
        name = schedule_name(run.dag_id, run.run_id, run.clear_number, alert)
        _create_schedule(scheduler, name, at, deadline_event(dag, run, execution, alert), target_arn)
    return moment.isoformat() if moment else None


def _create_schedule(scheduler: Any, name: str, moment: datetime, event: dict[str, Any], target_arn: str) -> None:
    at = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=math.ceil(moment.microsecond / 1e6))
    target: dict[str, Any] = {
        "Arn": target_arn,
        "RoleArn": os.environ[SCHEDULER_ROLE_ENV],
        "Input": json.dumps(event, sort_keys=True),
        "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
    }
    if os.environ.get(SCHEDULE_DLQ_ENV):
        target["DeadLetterConfig"] = {"Arn": os.environ[SCHEDULE_DLQ_ENV]}
    try:
        scheduler.create_schedule(
            Name=name,
            GroupName=os.environ[SCHEDULE_GROUP_ENV],
            ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target=target,
        )
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") != "ConflictException":
            raise  # (a conflict: a retried step created it before)


@dataclass(frozen=True, slots=True)
class Decision:
    """How a deadline was decided: "missed" or "met" (`first`: just now, not before), or None (not
    this execution's, or met before). A missed one whose callback has not run is missed again."""

    outcome: str | None
    deadline: DeadlineRecord | None = None
    first: bool = False


def decide(store: MetadataStore, run: DagRun, alert: int) -> Decision:
    """The deadline's moment has come: met if the run had succeeded by its deadline (Airflow drops
    such a deadline; a failed run's stays), else missed; each deadline once."""
    key = RunKey(run.dag_id, run.run_id)
    armed = store.deadline(key, alert)
    if armed is None or armed.clear_number != run.clear_number:
        return Decision(None, armed)
    if armed.state == MISSED and not armed.called:  # decided before, its callback not run: run it now
        return Decision(MISSED, armed)
    if armed.state != ARMED:
        return Decision(None, armed)
    ended_at = _succeeded_at(store.get_run(key))
    outcome = MET if ended_at is not None and ended_at <= datetime.fromisoformat(armed.deadline) else MISSED
    if not store.decide_deadline(key, alert, run.clear_number, outcome):
        return Decision(None, armed)
    return Decision(outcome, armed, first=True)


def _succeeded_at(record: RunRecord | None) -> datetime | None:
    if record is None or record.state is not RunState.SUCCESS:
        return None
    return parse_time(record.end_date or record.finished_at) or datetime.now(UTC)


def callback_context(record: RunRecord | None, run: DagRun, deadline: DeadlineRecord) -> dict[str, Any]:
    """What a deadline's callback receives as `context` (Airflow's: the run as its API shows it, and
    the deadline)."""
    return {
        "dag_run": {
            "dag_id": run.dag_id,
            "dag_run_id": run.run_id,
            "logical_date": run.logical_date.isoformat() if run.logical_date else None,
            "data_interval_start": run.data_interval_start.isoformat() if run.data_interval_start else None,
            "data_interval_end": run.data_interval_end.isoformat() if run.data_interval_end else None,
            "queued_at": record.queued_at if record else None,
            "start_date": record.start_date if record else None,
            "end_date": record.end_date if record else None,
            "state": record.state.value if record else RunState.RUNNING.value,
            "run_type": run.run_type.value,
            "triggered_by": record.triggered_by if record else None,
            "conf": dict(run.conf),
        },
        "deadline": {"id": f"{run.dag_id}/{run.run_id}/{deadline.alert}", "deadline_time": deadline.deadline},
    }
