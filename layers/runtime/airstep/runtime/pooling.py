"""Pools at run time. A pooled task instance's acquire state waits for a task token: the runner
takes the instance's slots and sends the token at once, or stores the token as a waiter and returns
(nothing runs while it waits). Whoever gives slots back starts the next waiters, oldest first; the
run-reconciler gives back the slots of instances whose executions ended without doing so, and starts
waiters a lost wake-up left behind.

An instance may need slots of two pools: its run's own (the DAG's max_active_tasks) and its task's
pool. It takes both at once or neither (one transaction), and waits holding nothing, in the queue of
a pool that was full; whoever starts it and finds the other pool full moves it to that queue. A
request whose wait is over (its token dead) gives back only the slots it took itself (its tag), so
a retried acquire never frees the slots its retry runs on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from airstep.contract import POOL_UNAVAILABLE, RUN_POOL_PREFIX, DagRun, run_pool
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
    """The slots a task instance takes before it runs: of its run's own pool, of its task's pool."""
    found = []
    if model.max_active_tasks is not None:
        found.append(Claim(run_pool(run.dag_id, run.run_id, run.clear_number), 1, model.max_active_tasks))
    if task.pool is not None:
        found.append(Claim(task.pool, task.pool_slots))
    return tuple(found)


def refusal(claim: Claim, taken: Taken) -> str:
    pool = claim.pool
    if taken is Taken.MISSING and pool.startswith(RUN_POOL_PREFIX):
        return "the run's max_active_tasks slots are gone: its run has ended"
    if taken is Taken.MISSING:
        return f"pool {pool!r} does not exist: create it with `airstep pools set {pool} SLOTS`"
    return (
        f"the task needs {claim.slots} slot(s) of pool {pool!r}, which has fewer: raise them with `airstep pools set`"
    )


def acquire(
    store: MetadataStore, sfn: Any, wanted: tuple[Claim, ...], holder: str, token: str, execution_arn: str
) -> tuple[Taken, Claim]:
    """Take the instance's claims and release its acquire state, or queue it (FULL) in the queue of
    the claim that was full. MISSING and TOO_BIG (with the claim refused) are the caller's to fail."""
    taken, claim = store.take_claims(wanted, holder, execution_arn, _tag(token))
    if taken is Taken.FULL:
        store.add_waiter(claim.pool, wanted, _now(), holder, token, execution_arn)
        wake(store, sfn, [claim.pool])  # slots may have come back between the two writes
    elif taken in (Taken.TAKEN, Taken.HELD):
        wake(store, sfn, _released(store, sfn, wanted, holder, token, taken).freed)
    return taken, claim


def _released(
    store: MetadataStore, sfn: Any, wanted: tuple[Claim, ...], holder: str, token: str, taken: Taken
) -> _Started:
    """The instance holds its slots: send its token. Slots that an earlier request took and this
    one found held become this request's (so the earlier one's end frees nothing this one runs on);
    if this request's wait is over, what it took itself just now goes back (the pools freed)."""
    if not _send(sfn, token):  # held already (HELD): by a request that ran, or an earlier start of this one
        return _Started(0, _give_back_own(store, wanted, holder, token) if taken is Taken.TAKEN else ())
    if taken is Taken.HELD:
        for claim in wanted:
            store.adopt(claim.pool, holder, _tag(token))
    return _Started(1)


def release(store: MetadataStore, sfn: Any, pools: Iterable[str], holder: str) -> None:
    """The instance has ended: give its slots back and start the waiters they make room for."""
    wake(store, sfn, [pool for pool in pools if store.free_pool_slots(pool, holder)])


def release_run(store: MetadataStore, sfn: Any, model: DagModel, run: DagRun) -> None:
    """Give back every slot the run (this clear of it) still holds: it has ended. Its own pool
    goes."""
    prefix = run_prefix(run)
    own = run_pool(run.dag_id, run.run_id, run.clear_number)
    pools = sorted({t.pool for t in model.tasks if t.pool is not None})
    freed = []
    for pool in pools + ([own] if model.max_active_tasks is not None else []):
        record = store.get_pool(pool)
        for holder in sorted((record.holders or {}) if record else {}):
            if holder.startswith(prefix) and store.free_pool_slots(pool, holder):
                freed.append(pool)
    if model.max_active_tasks is not None:
        store.delete_pool(own)
    wake(store, sfn, [pool for pool in dict.fromkeys(freed) if pool != own])


def wake(store: MetadataStore, sfn: Any, pools: Iterable[str]) -> int:
    """Start the waiters of these pools, oldest first, each whose slots are free now (one that needs
    more waits on; the ones behind it may fit); a waiter whose start gives slots back adds their
    pools to the work. How many started. A loop, never a recursion: a queue of dead waiters of any
    length is worked through."""
    pending = list(dict.fromkeys(pools))
    started = 0
    while pending:
        pool = pending.pop(0)
        progressed = True
        while progressed:
            progressed = False
            for waiter in store.waiters(pool):
                outcome = _start(store, sfn, waiter)
                if outcome is None:
                    continue
                started += outcome.started
                pending += [p for p in outcome.freed if p not in pending]
                progressed = True
                break  # the queue changed: read it again
    return started


@dataclass(frozen=True, slots=True)
class _Started:
    started: int  # 1: its token was sent
    freed: tuple[str, ...] = ()  # pools whose slots it gave back (its wait was over)


def _start(store: MetadataStore, sfn: Any, waiter: Waiter) -> _Started | None:
    """Start a waiter, move it to the queue of another pool that is full, or drop it (its pool went
    away, or its wait is over); None if its own pool is still full. Its token is sent before it is
    removed: a promoter that stops in between leaves a waiter the next one starts again, harmlessly
    (the token's wait is over, the slots are held already). Slots go back after it is removed."""
    wanted, holder, token = waiter.claims, waiter.holder, waiter.token
    # a run's own pool gone: its run ended (not made again)
    taken, claim = store.take_claims(wanted, holder, waiter.execution_arn, _tag(token), create=False)
    if taken is Taken.FULL and claim.pool == waiter.pool:
        return None
    if taken is Taken.FULL:  # its own pool has room now, another has not: wait there
        store.add_waiter(claim.pool, wanted, waiter.order, holder, token, waiter.execution_arn)
        store.remove_waiter(waiter)
        return _Started(0)
    if taken in (Taken.MISSING, Taken.TOO_BIG):  # a pool shrank or went away while it waited
        fail_token(sfn, token, refusal(claim, taken))
        store.remove_waiter(waiter)
        return _Started(0)
    outcome = _released(store, sfn, wanted, holder, token, taken)
    store.remove_waiter(waiter)
    return outcome


def _give_back_own(store: MetadataStore, wanted: tuple[Claim, ...], holder: str, token: str) -> tuple[str, ...]:
    """A request whose wait is over: give back what it took itself; the pools freed."""
    tag = _tag(token)
    return tuple(claim.pool for claim in wanted if store.free_pool_slots(claim.pool, holder, tag))


def repair(store: MetadataStore, sfn: Any, now: datetime | None = None) -> dict[str, int]:
    """The reconciler's pass over every pool: free the slots of instances whose executions ended
    more than Lambda's 15 minutes ago (a try may run on that long after a timeout or a stop), then
    start the waiters behind free slots; a run's own pool goes once its execution has ended so.
    Freed and started, by pool. Each execution is described once per pass."""
    now = now or datetime.now(UTC)
    long_ago = now - timedelta(seconds=LAMBDA_MAX_SECONDS)
    ended: dict[str, bool] = {}

    def ended_long_ago(arn: str) -> bool:
        if arn not in ended:
            ended[arn] = _ended_before(sfn, arn, long_ago)
        return ended[arn]

    repaired: dict[str, int] = {}
    for pool in store.list_pools() + store.list_pools(runs=True):
        for holder, holding in sorted((pool.holders or {}).items()):
            if ended_long_ago(holding.execution_arn or pool.execution_arn or "") and store.free_pool_slots(
                pool.name, holder
            ):
                repaired[pool.name] = repaired.get(pool.name, 0) + 1
        if pool.execution_arn and ended_long_ago(pool.execution_arn):
            store.delete_pool(pool.name)
            continue
        started = wake(store, sfn, [pool.name])
        if started:
            repaired[pool.name] = repaired.get(pool.name, 0) + started
    return repaired


def _ended_before(sfn: Any, execution_arn: str, moment: datetime) -> bool:
    if not execution_arn:
        return False
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


def fail_token(sfn: Any, token: str, message: str) -> None:
    """End an acquire state with the pool's refusal (nothing if its wait is over already)."""
    try:
        sfn.send_task_failure(taskToken=token, error=POOL_UNAVAILABLE, cause=message)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _DEAD_TOKEN:
            raise


def _tag(token: str) -> str:
    """A short tag of the request (its task token) that slots were taken for."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
