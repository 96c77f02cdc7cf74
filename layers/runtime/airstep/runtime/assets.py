"""Asset-triggered runs, as Airflow 3's scheduler makes them.

A task instance that succeeds updates each asset in its `outlets`: an event is recorded and queued
for every DAG scheduled on that asset. A consumer whose condition (`AssetAll`/`AssetAny` over the
assets queued for it) holds gets one run: `asset_triggered__<run_after>_<suffix>`, with no logical
date and no data interval, `run_after` the time its newest queue entry was made, and the events
since its previous asset-triggered run as `triggering_asset_events`. Its queue entries go in the
same write, so two evaluators never make two runs of one set of events.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from airstep.contract import ASSET_CONSUMERS, DagRun, parse_time
from airstep.model import DagModel
from airstep.runtime.admission import Admission, admit_queued, slot_group
from airstep.runtime.clients import client
from airstep.runtime.constants import ASSET_RUNS_FUNCTION_ENV, SERVICE_NAME
from airstep.runtime.store import MetadataStore, QueuedRun
from airstep.runtime.store.assets import (
    MAX_CONSUMERS,
    AssetEvent,
    Consumer,
    QueueEntry,
    WatchedAsset,
    bucket_source,
    queue_arn,
    queue_source,
    s3_location,
)
from airstep.runtime.store.codec import TransactionConflict
from airstep.states import RunType

logger = Logger(service=SERVICE_NAME)

# Consumed events a run carries (in its execution input, within Step Functions' 256 KiB, and its
# run-queue item, within DynamoDB's 400 KB): the newest, by count and by size.
MAX_EVENTS_PER_ASSET = 50
MAX_EVENTS = 200
MAX_EVENT_BYTES = 64_000


def condition_assets(condition: dict[str, Any]) -> dict[str, str]:
    """The assets a condition mentions, in order: their URIs by name."""
    found: dict[str, str] = {}
    for leaf in _leaves(condition):
        found.setdefault(leaf["asset"], leaf.get("uri", leaf["asset"]))
    return found


def condition_queues(condition: dict[str, Any] | None) -> set[tuple[str, str, str]]:
    """The SQS queues the condition's assets watch: (asset name, asset URI, queue ARN)."""
    return {
        (leaf["asset"], leaf.get("uri", leaf["asset"]), queue_arn(watcher["queue"]))
        for leaf in (_leaves(condition) if condition else ())
        for watcher in leaf.get("watchers", ())
    }


def _leaves(condition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "asset" in condition:
        yield condition
        return
    for part in condition.get("all", condition.get("any", [])):
        yield from _leaves(part)


def evaluate(condition: dict[str, Any], updated: set[str]) -> bool:
    """Whether the condition holds when the assets `updated` have been (Airflow's evaluate)."""
    if "asset" in condition:
        return condition["asset"] in updated
    if "all" in condition:
        return all(evaluate(part, updated) for part in condition["all"])
    return any(evaluate(part, updated) for part in condition["any"])


def consumer_of(model: DagModel) -> Consumer | None:
    """The DAG as a consumer of assets, if its schedule is an asset condition."""
    if model.schedule is None or model.schedule.assets is None:
        return None
    return Consumer(model.dag_id, model.schedule.assets)


def subscribe(store: MetadataStore, dag_id: str, now: dict[str, Any] | None, before: dict[str, Any] | None) -> None:
    """The DAG hears of the events of the assets its condition `now` names (an s3:// asset's also
    from its bucket's objects, a watched asset's from its queue's messages), and no longer of those
    its condition `before` named alone."""
    named = condition_assets(now) if now else {}
    was = condition_assets(before) if before else {}
    queues, queued_before = condition_queues(now), condition_queues(before)
    for name, uri in was.items():
        if name not in named:
            store.unregister_consumer(name, dag_id)
        if named.get(name) != uri and (location := s3_location(uri)) is not None:
            store.unwatch(bucket_source(location[0]), name, dag_id)
    for name, _, arn in queued_before - queues:
        store.unwatch(queue_source(arn), name, dag_id)
    for name, uri in named.items():
        store.register_consumer(name, Consumer(dag_id, now or {}))
        if (location := s3_location(uri)) is not None:
            store.watch(bucket_source(location[0]), WatchedAsset(name, uri, dag_id))
    for name, uri, arn in queues:
        store.watch(queue_source(arn), WatchedAsset(name, uri, dag_id))


def task_events(
    model: DagModel, task_id: str, run: DagRun, map_index: int, try_number: int, end: str
) -> list[AssetEvent]:
    """The events of a task instance's try that succeeded at `end`: one per asset in its outlets."""
    task = model.task_map[task_id]
    source = {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "task_id": task_id,
        "map_index": map_index,
        "try_number": try_number,  # a cleared task that succeeds again updates its assets again
    }
    ended = parse_time(end)
    assert ended is not None
    return [AssetEvent(name, uri, ended.astimezone(UTC).isoformat(), source) for name, uri in task.outlets]


def record(store: MetadataStore, event: AssetEvent) -> list[str]:
    """Record the event (once: a duplicate delivery writes nothing) and queue it for the asset's
    consumers; the consumers, whose queues the caller has evaluated (again, harmlessly, for a
    duplicate: its first delivery may have stopped before)."""
    consumers = [c.dag_id for c in store.consumers(event.name)]
    if len(consumers) > MAX_CONSUMERS:
        logger.error("asset has too many consumers", extra={"asset": event.name, "consumers": len(consumers)})
    store.add_asset_event(event, consumers, _now())
    return consumers


def announce(consumers: list[str]) -> None:
    """Ask start-run (asynchronously: not the caller's to wait for) to start the consumers' runs
    that are due; nothing where no function is named (locally, the CLI starts them)."""
    function = os.environ.get(ASSET_RUNS_FUNCTION_ENV)
    if consumers and function:
        request = json.dumps({ASSET_CONSUMERS: sorted(set(consumers))}).encode()
        client("lambda").invoke(FunctionName=function, InvocationType="Event", Payload=request)


def triggered_run(store: MetadataStore, consumer: Consumer, deployed: tuple[str, int] | None = None) -> DagRun | None:
    """The consumer's next run if its condition holds over its queue, else None. The queue is
    claimed for it; with `deployed` (the DAG's state machine and max_active_runs) the same write
    puts the run in the DAG's run queue, so whoever promotes that queue starts it, should this
    caller stop."""
    queued = store.queued_assets(consumer.dag_id)
    if not queued or not evaluate(consumer.condition, set(queued)):
        return None
    run_after = max(entry.queued_at for entry in queued.values())
    events = _consumed(store, queued)
    digest = hashlib.sha256(repr(sorted(queued.items())).encode()).hexdigest()[:8]
    run = DagRun(
        consumer.dag_id,
        f"{RunType.ASSET_TRIGGERED.value}__{run_after}_{digest}",
        RunType.ASSET_TRIGGERED,
        None,
        None,
        None,
        triggering_asset_events=tuple(events),
    )
    also = []
    if deployed is not None:
        state_machine_arn, limit = deployed
        group = slot_group(run)
        also = [
            {"Put": {"Item": store.queue_item(QueuedRun(group, run_after, run, state_machine_arn, True), _now())}},
            {"Update": store.limit_update(group, limit, keep=True)},  # a deploy's newer limit stays
        ]
    if not store.claim_asset_queue(consumer.dag_id, queued, also):
        return None  # another evaluator made the run, or an event arrived since the queue was read
    return run


def _consumed(store: MetadataStore, queued: dict[str, QueueEntry]) -> list[dict[str, Any]]:
    """The events a run consumes: each queued asset's since its queue entry was made, the newest
    first when they are more than a run carries (by count, then by size), oldest first."""
    events = [
        event.to_dict()
        for name, entry in sorted(queued.items())
        for event in store.asset_events(name, entry.first_event, MAX_EVENTS_PER_ASSET)
    ]
    events.sort(key=lambda e: (e["timestamp"], e["asset"]))
    kept: list[dict[str, Any]] = []
    size = 0
    for event in reversed(events[-MAX_EVENTS:]):
        size += len(json.dumps(event))
        if size > MAX_EVENT_BYTES:
            break
        kept.append(event)
    return kept[::-1]


def overdue_consumers(store: MetadataStore, queued_before: str) -> list[str]:
    """The deployed consumers (not paused, below max_active_runs) whose condition holds over their
    queue, the oldest entry of which was queued before `queued_before`: start-run was asked and failed
    every attempt, or never asked (the reconciler asks it again)."""
    due = []
    for record in store.list_dags():
        if record.removed or record.paused or record.schedule is None or record.schedule.assets is None:
            continue
        queued = store.queued_assets(record.dag_id)
        if not queued or min(entry.queued_at for entry in queued.values()) >= queued_before:
            continue
        if evaluate(record.schedule.assets, set(queued)) and not _busy(store, record.dag_id, record.max_active_runs):
            due.append(record.dag_id)
    return due


def _busy(store: MetadataStore, dag_id: str, limit: int) -> bool:
    """Whether the DAG's active and queued runs reach its max_active_runs (its queue waits for one)."""
    return len(store.slot_holders(dag_id)) + len(store.queued_runs(dag_id)) >= limit


def start_runs(store: MetadataStore, sfn: Any, dag_ids: list[str]) -> list[Admission]:
    """Start (or queue) the deployed consumers' runs that are due, each DAG on its own (one that
    fails does not stop the others). As in Airflow, a paused DAG makes no run (its queue waits for
    its unpause), nor a DAG whose active and queued runs reach its max_active_runs (its queue waits
    for one to end)."""
    admitted, failed = [], []
    for dag_id in sorted(set(dag_ids)):
        try:
            admission = _start_run(store, sfn, dag_id)
        except (ClientError, TransactionConflict) as exc:
            logger.warning("asset-triggered run not started", extra={"dag_id": dag_id, "error": str(exc)})
            failed.append(dag_id)
            continue
        if admission is not None:
            admitted.append(admission)
    if failed:  # the function's retry (asynchronous invocations are retried twice) looks again
        raise RuntimeError(f"asset-triggered runs of {', '.join(failed)} not started: see the log")
    return admitted


def _start_run(store: MetadataStore, sfn: Any, dag_id: str) -> Admission | None:
    record = store.get_dag(dag_id)
    if record is None or record.removed or record.paused or record.schedule is None or record.schedule.assets is None:
        return None
    if _busy(store, dag_id, record.max_active_runs):
        return None
    consumer = Consumer(dag_id, record.schedule.assets)
    run = triggered_run(store, consumer, (record.state_machine_arn, record.max_active_runs))
    return admit_queued(store, sfn, run) if run is not None else None


def _now() -> str:
    return datetime.now(UTC).isoformat()
