"""Pools at run time. A pooled task instance's acquire state waits for a task token: the runner
takes the instance's slots and sends the token at once, or stores the token as a waiter and returns
(nothing runs while it waits). Whoever gives slots back starts the next waiters, oldest first; the
run-reconciler gives back the slots of instances whose executions ended without doing so, and starts
waiters a lost wake-up left behind.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from airstep.contract import POOL_UNAVAILABLE, DagRun
from airstep.runtime.store import MetadataStore
from airstep.runtime.store.pools import Taken, Waiter
from airstep.runtime.store.task_instances import instance_label

_DEAD_TOKEN = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
LAMBDA_MAX_SECONDS = 900  # a try may run this long after its execution ended


def holder_id(run: DagRun, task_id: str, map_index: int = -1) -> str:
    """What holds a task instance's slots: the instance in this clear of its run."""
    return f"{run_prefix(run)}{instance_label(task_id, map_index)}"


def run_prefix(run: DagRun) -> str:
    return f"{run.dag_id}#{run.run_id}#{run.clear_number}#"


def refusal(pool: str, slots: int, taken: Taken) -> str:
    if taken is Taken.MISSING:
        return f"pool {pool!r} does not exist: create it with `airstep pools set {pool} SLOTS`"
    return f"the task needs {slots} slot(s) of pool {pool!r}, which has fewer: raise them with `airstep pools set`"


def acquire(
    store: MetadataStore, sfn: Any, pool: str, slots: int, holder: str, token: str, execution_arn: str
) -> Taken:
    """Take the instance's slots and release its acquire state, or queue it (FULL); MISSING and
    TOO_BIG are the caller's to fail."""
    taken = store.take_pool_slots(pool, holder, slots, execution_arn)
    if taken in (Taken.TAKEN, Taken.HELD):
        if not _send(sfn, token) and taken is Taken.TAKEN:
            release(store, sfn, pool, holder)
    elif taken is Taken.FULL:
        store.add_waiter(pool, _now(), holder, slots, token, execution_arn)
        wake(store, sfn, pool)  # slots may have come back between the two writes
    return taken


def release(store: MetadataStore, sfn: Any, pool: str, holder: str) -> None:
    """Give the instance's slots back and start the waiters they make room for."""
    if store.free_pool_slots(pool, holder):
        wake(store, sfn, pool)


def release_run(store: MetadataStore, sfn: Any, pools: set[str], run: DagRun) -> None:
    """Give back every slot the run (this clear of it) still holds: it has ended."""
    prefix = run_prefix(run)
    for pool in sorted(pools):
        record = store.get_pool(pool)
        for holder in sorted((record.holders or {}) if record else {}):
            if holder.startswith(prefix):
                release(store, sfn, pool, holder)


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
    """Start a waiter (1), or drop it when its wait is over (0); None if its slots are not free. Its
    token is sent before the waiter is removed: a promoter that stops in between leaves a waiter the
    next one starts again, harmlessly (the token's wait is over, the slots are held already)."""
    taken = store.take_pool_slots(waiter.pool, waiter.holder, waiter.slots, waiter.execution_arn)
    if taken is Taken.FULL:
        return None
    if taken in (Taken.MISSING, Taken.TOO_BIG):  # the pool shrank or went away while it waited
        _fail(sfn, waiter.token, refusal(waiter.pool, waiter.slots, taken))
        store.remove_waiter(waiter)
        return 0
    sent = _send(sfn, waiter.token)
    if not sent and taken is Taken.TAKEN:  # its execution has gone: give back what was taken for it
        store.free_pool_slots(waiter.pool, waiter.holder)
    store.remove_waiter(waiter)
    return int(sent)


def repair(store: MetadataStore, sfn: Any, now: datetime | None = None) -> dict[str, int]:
    """The reconciler's pass over every pool: free the slots of instances whose executions ended
    more than Lambda's 15 minutes ago (a try may run on that long after a timeout or a stop), then
    start the waiters behind free slots. Freed and started, by pool."""
    now = now or datetime.now(UTC)
    repaired: dict[str, int] = {}
    for pool in store.list_pools():
        for holder, (_, arn) in sorted((pool.holders or {}).items()):
            if _ended_before(sfn, arn, now - timedelta(seconds=LAMBDA_MAX_SECONDS)):
                store.free_pool_slots(pool.name, holder)
                repaired[pool.name] = repaired.get(pool.name, 0) + 1
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
