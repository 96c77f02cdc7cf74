"""Pools: Airflow's named limits on how many task slots run at once, across every DAG.

A pool is one item (its slots, the slots in use, and the holders: task instances by id, each with
its slots and the execution it runs in); a task instance waiting for slots is a waiter item holding
its task token (nothing runs while it waits). Every change of the slots in use is one conditional
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
    """A pool as stored: its slots, a description, and who holds how many (holder -> (slots, arn))."""

    name: str
    slots: int
    description: str = ""
    holders: dict[str, tuple[int, str]] | None = None

    @property
    def used(self) -> int:
        return sum(slots for slots, _ in (self.holders or {}).values())

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.name, "slots": self.slots, "used": self.used, "description": self.description}

    @classmethod
    def from_item(cls, item: Item) -> PoolRecord:
        data = plain(item)
        holders = {h: _holding(v["S"]) for h, v in (item.get("holders", {}).get("M") or {}).items()}
        return cls(data["name"], int(data["slots"]), data.get("description", ""), holders)


@dataclass(frozen=True, slots=True)
class Waiter:
    """A task instance waiting for `slots` of a pool, by its task token."""

    pool: str
    sk: str
    holder: str
    slots: int
    token: str
    execution_arn: str


def _holding(value: str) -> tuple[int, str]:
    slots, arn = value.split(" ", 1)
    return int(slots), arn


class Pools:
    table: Table

    def set_pool(self, name: str, slots: int, description: str = "") -> None:
        """Create a pool or change its slots (holders keep theirs: a shrunk pool admits no one until
        enough have ended)."""
        self.table.update(
            key(schema.POOLS_PK, schema.pool_sk(name)),
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
        item = self.table.get(key(schema.POOLS_PK, schema.pool_sk(name)))
        return PoolRecord.from_item(item) if item else None

    def list_pools(self) -> list[PoolRecord]:
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": string(schema.POOLS_PK)},
            ConsistentRead=True,
        )
        return [PoolRecord.from_item(item) for item in items]

    def delete_pool(self, name: str) -> bool:
        """Delete a pool that no task holds slots of (False: it is in use, or there is none)."""
        return self.table.delete(
            key(schema.POOLS_PK, schema.pool_sk(name)),
            condition="attribute_exists(pk) AND used = :zero",
            ExpressionAttributeValues={":zero": number(0)},
        )

    def take_pool_slots(self, name: str, holder: str, slots: int, execution_arn: str) -> Taken:
        """Hold `slots` of the pool for `holder` if they are free."""
        pool = self.get_pool(name)
        if pool is None:
            return Taken.MISSING
        if holder in (pool.holders or {}):
            return Taken.HELD
        if slots > pool.slots:
            return Taken.TOO_BIG
        updated = self.table.update(
            key(schema.POOLS_PK, schema.pool_sk(name)),
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
            key(schema.POOLS_PK, schema.pool_sk(name)),
            "SET used = used - :n REMOVE holders.#h",
            condition="holders.#h = :holding",
            ExpressionAttributeNames={"#h": holder},
            ExpressionAttributeValues={":n": number(slots), ":holding": string(f"{slots} {arn}")},
        )
        return updated is not None

    def add_waiter(self, name: str, order: str, holder: str, slots: int, token: str, execution_arn: str) -> None:
        """Wait for slots of the pool, in `order` (a repeated wait of a holder is another waiter: the
        first to start it sends its token; the other's is dead, and it starts nothing)."""
        self.table.put(
            {
                **key(schema.pool_waiters_pk(name), schema.pool_waiter_sk(order, holder)),
                "waiter": string(json.dumps([holder, slots, token, execution_arn])),
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
            holder, slots, token, arn = json.loads(item["waiter"]["S"])
            found.append(Waiter(name, item["sk"]["S"], holder, slots, token, arn))
        return found

    def remove_waiter(self, waiter: Waiter) -> bool:
        """Stop waiting (False: another promoter took the waiter first)."""
        return self.table.delete(key(schema.pool_waiters_pk(waiter.pool), waiter.sk), condition="attribute_exists(sk)")
