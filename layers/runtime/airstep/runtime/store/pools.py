"""Pools: Airflow's named limits on how many task slots run at once, across every DAG.

A pool is one item (its slots, the slots in use, and the holders: task instances by id, each with
its slots and the execution it runs in); a task instance waiting for slots is a waiter item holding
its task token (nothing runs while it waits). A run whose DAG sets max_active_tasks has a pool of its
own, created by its first task and deleted when the run ends. Every change of the slots in use is one conditional
update, so the pool is never over-committed and a holder never counts twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airstep.runtime.store import schema
from airstep.runtime.store.codec import Item, Table, key, number, plain, string


class Taken(StrEnum):
    """What became of a request for slots."""

    TAKEN = "taken"  # taken now
    HELD = "held"  # held already (a repeated request)
    FULL = "full"  # not enough free: wait
    MISSING = "missing"  # no such pool
    TOO_BIG = "too_big"  # asks for more slots than the pool has


@dataclass(frozen=True, slots=True)
class PoolRecord:
    """A pool as stored: its slots, a description, and who holds how many (holder -> (slots, arn));
    a run's own pool names the execution it serves."""

    name: str
    slots: int
    description: str = ""
    holders: dict[str, tuple[int, str]] | None = None
    execution_arn: str | None = None

    @property
    def used(self) -> int:
        return sum(slots for slots, _ in (self.holders or {}).values())

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.name, "slots": self.slots, "used": self.used, "description": self.description}

    @classmethod
    def from_item(cls, item: Item) -> PoolRecord:
        data = plain(item)
        holders = {h: _holding(v["S"]) for h, v in (item.get("holders", {}).get("M") or {}).items()}
        return cls(data["name"], int(data["slots"]), data.get("description", ""), holders, data.get("execution_arn"))


@dataclass(frozen=True, slots=True)
class Claim:
    """Slots of one pool that a task instance needs; a run's own pool is created (with `create`
    slots) by the first instance that claims it."""

    pool: str
    slots: int
    create: int | None = None

    def to_list(self) -> list[Any]:
        return [self.pool, self.slots, self.create]


@dataclass(frozen=True, slots=True)
class Waiter:
    """A task instance waiting for `claims[at]` (the earlier claims held already, the later ones
    still to take), by its task token."""

    sk: str
    holder: str
    claims: tuple[Claim, ...]
    at: int
    token: str
    execution_arn: str

    @property
    def claim(self) -> Claim:
        return self.claims[self.at]

    @property
    def pool(self) -> str:
        return self.claim.pool


def _holding(value: str) -> tuple[int, str]:
    slots, arn = value.split(" ", 1)
    return int(slots), arn


class Pools:
    table: Table

    def set_pool(self, name: str, slots: int, description: str = "") -> None:
        """Create a pool or change its slots (holders keep theirs: a shrunk pool admits no one until
        enough have ended)."""
        self.table.update(
            key(*schema.pool_key(name)),
            "SET #n = :name, slots = :slots, description = :description, "
            "holders = if_not_exists(holders, :none), used = if_not_exists(used, :zero)",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={
                ":name": string(name),
                ":slots": number(slots),
                ":description": string(description),
                ":none": {"M": {}},
                ":zero": number(0),
            },
        )

    def get_pool(self, name: str) -> PoolRecord | None:
        item = self.table.get(key(*schema.pool_key(name)))
        return PoolRecord.from_item(item) if item else None

    def list_pools(self, *, runs: bool = False) -> list[PoolRecord]:
        """The pools users set; `runs`: the pools of runs (max_active_tasks) instead."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": string(schema.RUN_POOLS_PK if runs else schema.POOLS_PK)},
            ConsistentRead=True,
        )
        return [PoolRecord.from_item(item) for item in items]

    def create_run_pool(self, name: str, slots: int, execution_arn: str) -> None:
        """A run's own pool, unless it exists (its items expire with the run's data)."""
        self.table.put(
            {
                **key(*schema.pool_key(name)),
                "name": string(name),
                "slots": number(slots),
                "used": number(0),
                "holders": {"M": {}},
                "execution_arn": string(execution_arn),
                "expires_at": self.table.expires_at(),
            },
            condition="attribute_not_exists(pk)",
        )

    def delete_pool(self, name: str) -> bool:
        """Delete a pool that no task holds slots of (False: it is in use, or there is none)."""
        return self.table.delete(
            key(*schema.pool_key(name)),
            condition="attribute_exists(pk) AND used = :zero",
            ExpressionAttributeValues={":zero": number(0)},
        )

    def take_pool_slots(self, claim: Claim, holder: str, execution_arn: str) -> Taken:
        """Hold the claim's slots of its pool for `holder` if they are free."""
        name, slots = claim.pool, claim.slots
        pool = self.get_pool(name)
        if pool is None and claim.create is not None:
            self.create_run_pool(name, claim.create, execution_arn)
            pool = self.get_pool(name)
        if pool is None:
            return Taken.MISSING
        if holder in (pool.holders or {}):
            return Taken.HELD
        if slots > pool.slots:
            return Taken.TOO_BIG
        updated = self.table.update(
            key(*schema.pool_key(name)),
            "SET used = used + :n, holders.#h = :holding",
            condition="attribute_not_exists(holders.#h) AND slots = :slots AND used <= :room",
            ExpressionAttributeNames={"#h": holder},
            ExpressionAttributeValues={
                ":n": number(slots),
                ":holding": string(f"{slots} {execution_arn}"),
                ":slots": number(pool.slots),
                ":room": number(pool.slots - slots),
            },
        )
        if updated is not None:
            return Taken.TAKEN
        again = self.get_pool(name)  # taken meanwhile by this holder (a repeat), or the pool filled up
        return Taken.HELD if again is not None and holder in (again.holders or {}) else Taken.FULL

    def free_pool_slots(self, name: str, holder: str) -> bool:
        """Give back what `holder` holds of the pool (False: it holds nothing)."""
        pool = self.get_pool(name)
        if pool is None or holder not in (pool.holders or {}):
            return False
        slots, arn = (pool.holders or {})[holder]
        updated = self.table.update(
            key(*schema.pool_key(name)),
            "SET used = used - :n REMOVE holders.#h",
            condition="holders.#h = :holding",
            ExpressionAttributeNames={"#h": holder},
            ExpressionAttributeValues={":n": number(slots), ":holding": string(f"{slots} {arn}")},
        )
        return updated is not None

    def add_waiter(
        self, claims: tuple[Claim, ...], at: int, order: str, holder: str, token: str, execution_arn: str
    ) -> None:
        """Wait for `claims[at]`, in `order` (a repeated wait of a holder is another waiter: the
        first to start it sends its token; the other's is dead, and it starts nothing)."""
        self.table.put(
            {
                **key(schema.pool_waiters_pk(claims[at].pool), schema.pool_waiter_sk(order, holder)),
                "waiter": string(json.dumps([holder, [c.to_list() for c in claims], at, token, execution_arn])),
                "expires_at": self.table.expires_at(),
            }
        )

    def waiters(self, name: str, limit: int = 25) -> list[Waiter]:
        """The pool's first waiters, in order."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": string(schema.pool_waiters_pk(name))},
            ConsistentRead=True,
            limit=limit,
        )
        found = []
        for item in items:
            stored = json.loads(item["waiter"]["S"])
            if len(stored) == 4:  # written before max_active_tasks: one claim
                holder, slots, token, arn = stored
                stored = [holder, [[name, slots, None]], 0, token, arn]
            holder, claims, at, token, arn = stored
            found.append(Waiter(item["sk"]["S"], holder, tuple(Claim(*c) for c in claims), at, token, arn))
        return found

    def remove_waiter(self, waiter: Waiter) -> bool:
        """Stop waiting (False: another promoter took the waiter first)."""
        return self.table.delete(key(schema.pool_waiters_pk(waiter.pool), waiter.sk), condition="attribute_exists(sk)")
