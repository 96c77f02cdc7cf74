"""Starting runs within their DAG's `max_active_runs` (and a backfill within its own limit, as
Airflow keeps the two apart).

A run to start is queued (its record says `queued`), then the queue is promoted: while the group has
a free slot, its oldest queued run takes one and its execution starts, named by its run_id, so a
duplicate start is refused by Step Functions. Each step is idempotent and every path that can free a
slot promotes: a run's final status (run tracker, reconciler) frees its slot and starts the next
queued run, and the reconciler promotes any group whose queue has waited a while (a promoter that
stopped between its steps). A queued run holds no compute: it is an item in DynamoDB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from airstep.contract import DagRun, execution_arn, execution_name
from airstep.runtime.store import MetadataStore, QueuedRun, RunKey
from airstep.runtime.store.slots import backfill_group
from airstep.states import RunState, RunType


@dataclass(frozen=True, slots=True)
class Admission:
    """What became of a run asked to start: `running` (its execution started, or had already) or
    `queued` (it starts when a slot of its group frees)."""

    run_id: str
    state: RunState
    execution_arn: str | None = None
    duplicate: bool = False  # the run had been started before (a repeated delivery or request)


def slot_group(run: DagRun) -> str:
    """A backfill's runs count against the backfill's limit, every other run against the DAG's."""
    return backfill_group(run.dag_id) if run.run_type is RunType.BACKFILL else run.dag_id


def admit(
    store: MetadataStore,
    sfn: Any,
    run: DagRun,
    state_machine_arn: str,
    limit: int | None,
    *,
    order: str | None = None,
    catchup: bool = True,
) -> Admission:
    """Queue the run behind its group's earlier runs and start what the group's slots allow.
    `order`: where it queues (default: its logical date, so older runs start first); `limit` None
    keeps the group's own (a backfill's). A run cleared to run again (its record queued by
    `clearing.clear_run`) is admitted as any run."""
    known = store.get_run(RunKey(run.dag_id, run.run_id))
    if known is not None and known.state is not RunState.QUEUED:
        return Admission(run.run_id, known.state, known.execution_arn, duplicate=True)
    now = _now()
    place = order or (run.logical_date.isoformat() if run.logical_date else now)
    queued = QueuedRun(slot_group(run), place, run, state_machine_arn, catchup)
    if not store.enqueue(queued, limit, now):  # queued already (a repeated request)
        return Admission(run.run_id, RunState.QUEUED, duplicate=True)
    store.queue_run(run, now)
    if not catchup and run.run_type is RunType.SCHEDULED:  # Airflow would only have created the newest
        for older in store.queued_runs(queued.group):
            if older.run.run_type is RunType.SCHEDULED and not older.run.clear_number and older.sk < queued.sk:
                store.dequeue(older)
                store.forget_queued_run(RunKey(older.run.dag_id, older.run.run_id))
    return _promoted(store, sfn, queued.group, run)


def admit_queued(store: MetadataStore, sfn: Any, run: DagRun) -> Admission:
    """Admit a run whose queue item (and its group's limit) were written already, by the write that
    made the run (an asset-triggered run's claim): record it queued and start what its group's
    slots allow."""
    group = slot_group(run)
    store.queue_run(run, _now())
    return _promoted(store, sfn, group, run)


def _promoted(store: MetadataStore, sfn: Any, group: str, run: DagRun) -> Admission:
    started = promote(store, sfn, group)
    if run.run_id in started:
        return Admission(run.run_id, RunState.RUNNING, started[run.run_id])
    record = store.get_run(RunKey(run.dag_id, run.run_id))
    state = record.state if record else RunState.QUEUED
    return Admission(run.run_id, state, record.execution_arn if record else None)


def promote(store: MetadataStore, sfn: Any, group: str) -> dict[str, str]:
    """Start the group's queued runs, oldest first, while it has free slots; their execution ARNs by
    run_id."""
    started: dict[str, str] = {}
    while waiting := store.queued_runs(group):
        queued = waiting[0]
        record = store.get_run(RunKey(queued.run.dag_id, queued.run.run_id))
        if record is not None and (
            record.exec_status not in (None, "RUNNING") or record.clear_number != queued.run.clear_number
        ):
            store.dequeue(queued)  # it started and ended already (a promoter stopped before dequeuing it)
            continue  # or the run was cleared since: its queue item is another
        name = execution_name(queued.run.run_id, queued.run.clear_number)
        arn = execution_arn(queued.state_machine_arn, name)
        if not store.take_slot(group, queued.run.slot_holder, arn, _now()):
            break
        refused = _start(sfn, queued, name)
        if refused is None:
            now = _now()
            store.track_execution(
                queued.run, status="RUNNING", state=RunState.RUNNING, execution_arn=arn, start=now, end=None, error=None
            )
            started[queued.run.run_id] = arn
        else:  # it can never start (its DAG is gone, its input is refused): the runs behind it go on
            store.free_slot(group, queued.run.slot_holder)
            store.fail_queued_run(queued.run, refused, _now())
        store.dequeue(queued)
    return started


def release(store: MetadataStore, sfn: Any, run: DagRun) -> dict[str, str]:
    """The run has ended: free its slot, and start the runs that were waiting for it."""
    group = slot_group(run)
    return promote(store, sfn, group) if store.free_slot(group, run.slot_holder) else {}


def _start(sfn: Any, queued: QueuedRun, name: str) -> str | None:
    """Start the queued run's execution: None, or why Step Functions refused it for good. An
    execution of that name may exist already (two promoters raced, or a start was repeated): it
    counts as started, and should it have ended, the reconciler gives its slot back (`reclaim`).
    Throttling and service errors are raised: the caller's retry (or the reconciler) tries again."""
    payload = json.dumps(queued.run.to_input(), sort_keys=True)
    try:
        sfn.start_execution(stateMachineArn=queued.state_machine_arn, name=name, input=payload)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in ("StateMachineDoesNotExist", "StateMachineDeleting"):
            return "its DAG was removed before the run could start"
        if code in ("InvalidExecutionInput", "InvalidName", "InvalidArn", "ValidationException"):
            return f"Step Functions refused to start it: {code}: {error.get('Message', '')}"
        if code != "ExecutionAlreadyExists":
            raise
    return None


def reclaim(store: MetadataStore, sfn: Any, group: str, taken_before: str) -> dict[str, str]:
    """Free the slots of runs whose executions are not running (their final status was applied but
    the slot never freed, or their holder stopped between taking a slot and starting, which counts
    only once the slot was taken before `taken_before`: a start may be in flight), then promote."""
    for run_id, (arn, taken_at) in store.slot_holders(group).items():
        try:
            status = sfn.describe_execution(executionArn=arn)["status"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                raise
            status = None if taken_at < taken_before else "RUNNING"
        if status != "RUNNING":
            store.free_slot(group, run_id)
    return promote(store, sfn, group)


def set_run_limit(store: MetadataStore, sfn: Any, dag_id: str, limit: int) -> dict[str, str]:
    """A DAG's max_active_runs changed: its slots follow at once (a raised limit starts queued runs)."""
    store.set_limit(dag_id, limit)
    return promote(store, sfn, dag_id)


def _now() -> str:
    return datetime.now(UTC).isoformat()
