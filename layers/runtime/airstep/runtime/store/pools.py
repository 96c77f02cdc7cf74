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
from typing import Any, NamedTuple

from airstep.contract import RUN_POOL_PREFIX
from airstep.runtime.store import schema
from airstep.runtime.store.codec import Item, Table, key, number, plain, string


class Holding(NamedTuple):
    """What a holder holds of a pool: its slots, the execution it runs in, and a tag of the request
    that took them (a request whose wait is over gives back only what it took itself)."""

    slots: int
    execution_arn: str
    tag: str = ""

    def value(self) -> str:
        return f"{self.slots} {self.execution_arn} {self.tag}".rstrip()

    @classmethod
    def parse(cls, value: str) -> Holding:
        slots, arn, *tag = value.split(" ", 2)
        return cls(int(slots), arn, tag[0] if tag else "")


class Taken(StrEnum):
    """What became of a request for slots."""

    TAKEN = "taken"  # taken now
    HELD = "held"  # held already (a repeated request)
    FULL = "full"  # not enough free: wait
    MISSING = "missing"  # no such pool
    TOO_BIG = "too_big"  # asks for more slots than the pool has


@dataclass(frozen=True, slots=True)
class PoolRecord:
    """A pool as stored: its slots, a description, and who holds what (holder -> Holding); a run's
    own pool names the execution it serves."""

    name: str
    slots: int
    description: str = ""
    holders: dict[str, Holding] | None = None
    execution_arn: str | None = None

    @property
    def used(self) -> int:
        return sum(holding.slots for holding in (self.holders or {}).values())

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.name, "slots": self.slots, "used": self.used, "description": self.description}

    @classmethod
    def from_item(cls, item: Item) -> PoolRecord:
        data = plain(item)
        holders = {h: Holding.parse(v["S"]) for h, v in (item.get("holders", {}).get("M") or {}).items()}
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
    """A task instance waiting, in the queue of `pool` (one of its claims, full when it was tried),
    for all its claims at once, by its task token. It holds nothing while it waits."""

    pool: str
    sk: str
    holder: str
    claims: tuple[Claim, ...]
    token: str
    execution_arn: str

    @property
    def order(self) -> str:
        """Its place in the queue (kept when it moves to another pool's queue)."""
        return self.sk.removeprefix(schema.WAITER_PREFIX).split("#", 1)[0]


def _holding(claim: Claim, execution_arn: str, tag: str) -> Holding:
    """A run's own pool names its execution once, not per holder (the item stays small)."""
    return Holding(claim.slots, "" if claim.pool.startswith(RUN_POOL_PREFIX) else execution_arn, tag)


def _take(claim: Claim, pool: PoolRecord, holder: str, holding: Holding) -> dict[str, Any]:
    """The conditional update that takes the claim's slots of the pool as read."""
    return {
        "Key": key(*schema.pool_key(claim.pool)),
        "UpdateExpression": "SET used = used + :n, holders.#h = :holding",
        "ConditionExpression": "attribute_not_exists(holders.#h) AND slots = :slots AND used <= :room",
        "ExpressionAttributeNames": {"#h": holder},
        "ExpressionAttributeValues": {
            ":n": number(claim.slots),
            ":holding": string(holding.value()),
            ":slots": number(pool.slots),
            ":room": number(pool.slots - claim.slots),
        },
    }


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

    def take_claims(
        self, claims: tuple[Claim, ...], holder: str, execution_arn: str, tag: str, *, create: bool = True
    ) -> tuple[Taken, Claim]:
        """Hold every claim's slots for `holder` at once (one conditional write per pool, in one
        transaction when there are several), or none: TAKEN (or HELD, all held already), else what
        stops the first claim that cannot be taken (FULL, MISSING, TOO_BIG), with that claim. A
        run's own pool is made by its first claim (`create`)."""
        for _ in range(3):  # a conditional write lost to a concurrent change: read again
            pools: list[tuple[Claim, PoolRecord]] = []
            for claim in claims:
                pool = self.get_pool(claim.pool)
                if pool is None and claim.create is not None and create:
                    self.create_run_pool(claim.pool, claim.create, execution_arn)
                    pool = self.get_pool(claim.pool)
                if pool is None:
                    return Taken.MISSING, claim
                if claim.slots > pool.slots:
                    return Taken.TOO_BIG, claim
                if holder not in (pool.holders or {}) and pool.slots - pool.used < claim.slots:
                    return Taken.FULL, claim
                pools.append((claim, pool))
            to_take = [(claim, pool) for claim, pool in pools if holder not in (pool.holders or {})]
            if not to_take:
                return Taken.HELD, claims[-1]
            takes = [_take(claim, pool, holder, _holding(claim, execution_arn, tag)) for claim, pool in to_take]
            if len(takes) == 1:  # one pool: a plain conditional update (a transaction costs twice)
                if self.table.update_part(takes[0]) is not None:
                    return Taken.TAKEN, claims[-1]
            elif self.table.transact_failures([{"Update": take} for take in takes]) == []:
                return Taken.TAKEN, claims[-1]  # else: a condition failed, or it lost to another write
        return Taken.FULL, claims[0]

    def free_pool_slots(self, name: str, holder: str, tag: str | None = None) -> bool:
        """Give back what `holder` holds of the pool (False: it holds nothing); with `tag`, only
        what the request of that tag took."""
        holding = self._holding_of(name, holder)
        if holding is None or (tag is not None and holding.tag != tag):
            return False
        updated = self.table.update(
            key(*schema.pool_key(name)),
            "SET used = used - :n REMOVE holders.#h",
            condition="holders.#h = :holding",
            ExpressionAttributeNames={"#h": holder},
            ExpressionAttributeValues={":n": number(holding.slots), ":holding": string(holding.value())},
        )
        return updated is not None

    def adopt(self, name: str, holder: str, tag: str) -> bool:
        """Mark what `holder` holds of the pool as taken for the request of `tag` (a retried request
        that found them held, and runs on them); False if it holds nothing there now."""
        holding = self._holding_of(name, holder)
        if holding is None:
            return False
        if holding.tag == tag:
            return True
        updated = self.table.update(
            key(*schema.pool_key(name)),
            "SET holders.#h = :mine",
            condition="holders.#h = :holding",
            ExpressionAttributeNames={"#h": holder},
            ExpressionAttributeValues={
                ":holding": string(holding.value()),
                ":mine": string(holding._replace(tag=tag).value()),
            },
        )
        return updated is not None

    def _holding_of(self, name: str, holder: str) -> Holding | None:
        pool = self.get_pool(name)
        return (pool.holders or {}).get(holder) if pool is not None else None

    def add_waiter(
        self, pool: str, claims: tuple[Claim, ...], order: str, holder: str, token: str, execution_arn: str
    ) -> None:
        """Wait in the queue of `pool`, in `order` (a repeated wait of a holder is another waiter: the
        first to start it sends its token; the other's is dead, and it starts nothing)."""
        self.table.put(
            {
                **key(schema.pool_waiters_pk(pool), schema.pool_waiter_sk(order, holder)),
                "waiter": string(json.dumps([holder, [c.to_list() for c in claims], token, execution_arn])),
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
            holder, claims, token, arn = json.loads(item["waiter"]["S"])
            if isinstance(claims, int):  # written before a task could claim two pools: its slots
                claims = [[name, claims, None]]
            found.append(Waiter(name, item["sk"]["S"], holder, tuple(Claim(*c) for c in claims), token, arn))
        return found

    def remove_waiter(self, waiter: Waiter) -> bool:
        """Stop waiting (False: another promoter took the waiter first)."""
        return self.table.delete(key(schema.pool_waiters_pk(waiter.pool), waiter.sk), condition="attribute_exists(sk)")
