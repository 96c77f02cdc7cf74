"""Pools at run time. A pooled task instance's acquire state waits for a task token: the runner
takes the instance's slots and sends the token at once, or stores the token as a waiter and returns
(nothing runs while it waits). Whoever gives slots back starts the next waiters, oldest first; the
run-reconciler gives back the slots of instances whose executions ended without doing so, and starts
waiters a lost wake-up left behind.

An instance may need slots of two pools: its run's own (the DAG's max_active_tasks), then its
task's pool. It takes them in that order, one at a time, waiting on the first it cannot take; every
instance keeps the same order, so none waits for a slot that a waiter behind it holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from airstep.contract import POOL_UNAVAILABLE, DagRun, run_pool
from airstep.model import DagModel, TaskModel
from airstep.runtime.store import MetadataStore
from airstep.runtime.store.pools import Claim, Taken, Waiter
from airstep.runtime.store.task_instances import instance_label

_DEAD_TOKEN = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
LAMBDA_MAX_SECONDS = 900  # a try may run this long after its execution ended


def holder_id(run: DagRun, task_id: str, map_index: int = -1) -> str:
    """What holds a task instance's slots: the instance in this clear of its run."""
    return f"{run_prefix(run)}{instance_label(task_id, map_index)}"


def run_prefix(run: DagRun) -> str:
    return f"{run.dag_id}#{run.run_id}#{run.clear_number}#"


def claims(model: DagModel, task: TaskModel, run: DagRun) -> tuple[Claim, ...]:
    """The slots a task instance takes before it runs, in the order it takes them."""
    found = []
    if model.max_active_tasks is not None:
        found.append(Claim(run_pool(run.dag_id, run.run_id, run.clear_number), 1, model.max_active_tasks))
    if task.pool is not None:
        found.append(Claim(task.pool, task.pool_slots))
    return tuple(found)


def refusal(claim: Claim, taken: Taken) -> str:
    pool = claim.pool
    if taken is Taken.MISSING:
        return f"pool {pool!r} does not exist: create it with `airstep pools set {pool} SLOTS`"
    return (
        f"the task needs {claim.slots} slot(s) of pool {pool!r}, which has fewer: raise them with `airstep pools set`"
    )


def acquire(
    store: MetadataStore, sfn: Any, claims: tuple[Claim, ...], holder: str, token: str, execution_arn: str
) -> tuple[Taken, Claim]:
    """Take the instance's claims and release its acquire state, or queue it on the first it cannot
    take yet (FULL). MISSING and TOO_BIG (with the claim refused) are the caller's to fail."""
    took = _take_from(store, sfn, claims, 0, holder, token, execution_arn, [])
    _give_back(store, sfn, took.give_back, holder)
    return took.taken, took.claim


@dataclass(frozen=True, slots=True)
class _Took:
    taken: Taken  # what became of `claim`, the last claim tried
    claim: Claim
    sent: bool  # the token was sent: the instance runs
    give_back: tuple[Claim, ...]  # what the request holds and must not keep (refused, or its wait is over)


def _take_from(
    store: MetadataStore,
    sfn: Any,
    claims: tuple[Claim, ...],
    at: int,
    holder: str,
    token: str,
    execution_arn: str,
    took: list[Claim],
) -> _Took:
    """Take `claims[at:]` in order (`took`: claims taken for this request already); queue the
    request on the first not free. All taken: the token is sent."""
    taken = Taken.HELD
    for k in range(at, len(claims)):
        claim = claims[k]
        taken = store.take_pool_slots(claim, holder, execution_arn)
        if taken is Taken.FULL:
            store.add_waiter(claims, k, _now(), holder, token, execution_arn)
            wake(store, sfn, claim.pool)  # slots may have come back between the two writes
            return _Took(taken, claim, False, ())
        if taken in (Taken.MISSING, Taken.TOO_BIG):
            return _Took(taken, claim, False, claims[:k])
        if taken is Taken.TAKEN:
            took.append(claim)
    sent = _send(sfn, token)
    return _Took(taken, claims[-1], sent, () if sent else tuple(took))


def _give_back(store: MetadataStore, sfn: Any, claims: tuple[Claim, ...], holder: str) -> None:
    for claim in reversed(claims):
        release(store, sfn, claim.pool, holder)


def release(store: MetadataStore, sfn: Any, pool: str, holder: str) -> None:
    """Give the instance's slots back and start the waiters they make room for."""
    if store.free_pool_slots(pool, holder):
        wake(store, sfn, pool)


def release_run(store: MetadataStore, sfn: Any, model: DagModel, run: DagRun) -> None:
    """Give back every slot the run (this clear of it) still holds: it has ended. Its own pool
    goes."""
    prefix = run_prefix(run)
    own = run_pool(run.dag_id, run.run_id, run.clear_number)
    pools = {t.pool for t in model.tasks if t.pool is not None}
    for pool in sorted(pools) + ([own] if model.max_active_tasks is not None else []):
        record = store.get_pool(pool)
        for holder in sorted((record.holders or {}) if record else {}):
            if holder.startswith(prefix):
                release(store, sfn, pool, holder)
    if model.max_active_tasks is not None:
        store.delete_pool(own)


def wake(store: MetadataStore, sfn: Any, pool: str) -> int:
    """Start the pool's waiters, oldest first, each whose slots are free now (one that needs more
    waits on; the ones behind it may fit); how many started."""
    started = 0
    while True:
        waiting = store.waiters(pool)
        progressed = False
        for waiter in waiting:
            outcome = _start(store, sfn, waiter)
            if outcome is not None:
                started += outcome
                progressed = True
                break  # the queue changed: read it again
        if not progressed:
            return started


def _start(store: MetadataStore, sfn: Any, waiter: Waiter) -> int | None:
    """Start a waiter (1), or drop it when its wait is over (0); None if its slots are not free. A
    waiter with a claim after this one moves on to wait for that (0). Its token is sent (or the
    waiter moved on) before it is removed: a promoter that stops in between leaves a waiter the next
    one starts again, harmlessly (the token's wait is over, the slots are held already). Slots to
    give back go after it is removed (giving back wakes this pool, which must not find it again)."""
    holder, token, arn = waiter.holder, waiter.token, waiter.execution_arn
    taken = store.take_pool_slots(replace(waiter.claim, create=None), holder, arn)  # a run's pool gone: its run ended
    if taken is Taken.FULL:
        return None
    if taken in (Taken.MISSING, Taken.TOO_BIG):  # the pool shrank or went away while it waited
        took = _Took(taken, waiter.claim, False, waiter.claims[: waiter.at])
    else:
        earlier = [waiter.claim] if taken is Taken.TAKEN else []
        took = _take_from(store, sfn, waiter.claims, waiter.at + 1, holder, token, arn, earlier)
    if took.taken in (Taken.MISSING, Taken.TOO_BIG):
        _fail(sfn, token, refusal(took.claim, took.taken))
    store.remove_waiter(waiter)
    _give_back(store, sfn, took.give_back, holder)
    return int(took.sent)


def repair(store: MetadataStore, sfn: Any, now: datetime | None = None) -> dict[str, int]:
    """The reconciler's pass over every pool: free the slots of instances whose executions ended
    more than Lambda's 15 minutes ago (a try may run on that long after a timeout or a stop), then
    start the waiters behind free slots; a run's own pool goes once its execution has ended so.
    Freed and started, by pool."""
    now = now or datetime.now(UTC)
    long_ago = now - timedelta(seconds=LAMBDA_MAX_SECONDS)
    repaired: dict[str, int] = {}
    for pool in store.list_pools() + store.list_pools(runs=True):
        for holder, (_, arn) in sorted((pool.holders or {}).items()):
            if _ended_before(sfn, arn, long_ago):
                store.free_pool_slots(pool.name, holder)
                repaired[pool.name] = repaired.get(pool.name, 0) + 1
        if pool.execution_arn and _ended_before(sfn, pool.execution_arn, long_ago):
            store.delete_pool(pool.name)
            continue
        started = wake(store, sfn, pool.name)
        if started:
            repaired[pool.name] = repaired.get(pool.name, 0) + started
    return repaired


def fail_token(sfn: Any, token: str, message: str) -> None:
    _fail(sfn, token, message)


def _ended_before(sfn: Any, execution_arn: str, moment: datetime) -> bool:
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except ClientError as exc:  # gone (or never one): ended; throttled and the like: the next pass
        return exc.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "ValidationException")
    stopped = described.get("stopDate")
    return described["status"] != "RUNNING" and (stopped is None or stopped <= moment)


def _send(sfn: Any, token: str) -> bool:
    """Release an acquire state; False if its wait has ended already (its execution stopped)."""
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps({}))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _DEAD_TOKEN:
            return False
        raise
    return True


def _fail(sfn: Any, token: str, message: str) -> None:
    try:
        sfn.send_task_failure(taskToken=token, error=POOL_UNAVAILABLE, cause=message)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _DEAD_TOKEN:
            raise


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
