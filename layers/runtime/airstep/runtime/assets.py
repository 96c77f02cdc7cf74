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
from datetime import UTC, datetime
from typing import Any

from airstep.contract import DagRun
from airstep.model import DagModel
from airstep.runtime.admission import Admission, admit_queued, slot_group
from airstep.runtime.store import MetadataStore, QueuedRun
from airstep.runtime.store.assets import AssetEvent, Consumer
from airstep.states import RunType

# Consumed events a run carries (in its execution input, within Step Functions' 256 KiB): the
# oldest of each asset, then of all.
ASSET_CONSUMERS = "asset_consumers"  # the start-run function's request: these DAGs' asset queues changed
MAX_EVENTS_PER_ASSET = 50
MAX_EVENTS = 200


def condition_assets(condition: dict[str, Any]) -> list[str]:
    """The asset names a condition mentions, in order."""
    if "asset" in condition:
        return [condition["asset"]]
    names: list[str] = []
    for part in condition.get("all", condition.get("any", [])):
        names += [n for n in condition_assets(part) if n not in names]
    return names


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


def task_events(model: DagModel, task_id: str, run: DagRun, map_index: int, end: str) -> list[AssetEvent]:
    """The events of a task instance that succeeded at `end`: one per asset in its outlets."""
    task = model.task_map[task_id]
    source = {"dag_id": run.dag_id, "run_id": run.run_id, "task_id": task_id, "map_index": map_index}
    return [AssetEvent(name, uri, _utc(end), source) for name, uri in task.outlets]


def record(store: MetadataStore, event: AssetEvent) -> list[str]:
    """Record the event and queue it for the asset's consumers; the consumers queued (none if the
    event was recorded before: a duplicate delivery)."""
    consumers = [c.dag_id for c in store.consumers(event.name)]
    return consumers if store.add_asset_event(event, consumers) else []


def triggered_run(store: MetadataStore, consumer: Consumer, state_machine_arn: str | None = None) -> DagRun | None:
    """The consumer's next run if its condition holds over its queue, else None. The queue is
    claimed for it, and with `state_machine_arn` (a deployed DAG) the run is put in its DAG's run
    queue by the same write: whoever promotes that queue starts it, should this caller stop."""
    queued, last = store.queued_assets(consumer.dag_id)
    if not queued or not evaluate(consumer.condition, set(queued)):
        return None
    run_after = max(queued.values())
    events = [
        event.to_dict()
        for name in condition_assets(consumer.condition)
        for event in store.asset_events(name, last, run_after, MAX_EVENTS_PER_ASSET)
    ]
    events.sort(key=lambda e: (e["timestamp"], e["asset"]))
    digest = hashlib.sha256(repr(sorted(queued.items())).encode()).hexdigest()[:8]
    run = DagRun(
        consumer.dag_id,
        f"{RunType.ASSET_TRIGGERED.value}__{run_after}_{digest}",
        RunType.ASSET_TRIGGERED,
        None,
        None,
        None,
        triggering_asset_events=tuple(events[:MAX_EVENTS]),
    )
    enqueue = None
    if state_machine_arn is not None:
        enqueue = store.queue_item(QueuedRun(slot_group(run), run_after, run, state_machine_arn, True), _now())
    if not store.claim_asset_queue(consumer.dag_id, queued, run_after, enqueue):
        return None  # another evaluator made the run
    return run


def start_runs(store: MetadataStore, sfn: Any, dag_ids: list[str]) -> list[Admission]:
    """Start (or queue, within max_active_runs) the deployed consumers' runs that are due. A paused
    DAG's queue waits for it to be unpaused, as in Airflow."""
    admitted = []
    for dag_id in sorted(set(dag_ids)):
        record = store.get_dag(dag_id)
        if record is None or record.removed or record.paused or record.schedule is None:
            continue
        if record.schedule.assets is None:
            continue
        run = triggered_run(store, Consumer(dag_id, record.schedule.assets), record.state_machine_arn)
        if run is not None:
            admitted.append(admit_queued(store, sfn, run, record.max_active_runs))
    return admitted


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _utc(moment: str) -> str:
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
