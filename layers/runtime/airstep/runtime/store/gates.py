"""Gates: a task held behind a task token until the upstream tasks its gate lists have ended.

Every write is one atomic update that returns the whole item, so whoever sees the gate complete with
its token present (the last upstream to arrive, or the gate itself if it registers late) releases it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airstep.runtime.store import schema
from airstep.runtime.store.codec import Item, Table, key, string
from airstep.runtime.store.runs import RunKey
from airstep.runtime.usage import ADD_USAGE, USAGE_MB_MS, USAGE_REQUESTS, LambdaUsage, carried_usage, usage_values


@dataclass(frozen=True, slots=True)
class GateStatus:
    token: str | None
    wait_for: frozenset[str]
    arrived: frozenset[str]

    @property
    def open(self) -> bool:
        return self.token is not None and bool(self.wait_for) and self.wait_for <= self.arrived

    @classmethod
    def from_item(cls, item: Item) -> GateStatus:
        return cls(
            token=item.get("task_token", {}).get("S"),
            wait_for=frozenset(item.get("upstream", {}).get("SS", [])),
            arrived=frozenset(item.get("arrived", {}).get("SS", [])),
        )


class Gates:
    table: Table
    add_lambda_usage: Any  # (RunRecords')

    def gate_register(
        self, run: RunKey, task_id: str, token: str, wait_for: list[str], usage: LambdaUsage | None = None
    ) -> GateStatus:
        """Store the gate's token and the upstreams it waits for (and the Lambda usage of the
        invocation that holds it there, which the gate's record carries for its run)."""
        values = {
            ":token": string(token),
            ":upstream": {"SS": sorted(set(wait_for))},
            ":expires": self.table.expires_at(),
        }
        update = "SET task_token = :token, upstream = :upstream, expires_at = :expires"
        if usage is not None:
            update += f" {ADD_USAGE}"
            values.update(usage_values(usage))
        return self._gate(run, task_id, update, values)

    def gate_arrive(self, run: RunKey, task_id: str, upstream_id: str) -> GateStatus:
        """Record that `upstream_id` has ended (at least once: a duplicate arrival changes nothing)."""
        return self._gate(run, task_id, "ADD arrived :up", {":up": {"SS": [upstream_id]}})

    def delete_gates(self, run: RunKey) -> None:
        """Forget every gate of the run: a new execution of it (a clear) registers its own. What the
        gates' invocations used stays the run's (moved to one of its usage items)."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :gate)",
            ExpressionAttributeValues={":pk": string(run.pk), ":gate": string(schema.GATE_PREFIX)},
            ConsistentRead=True,
            ProjectionExpression=f"pk, sk, {USAGE_REQUESTS}, {USAGE_MB_MS}",
        )
        used = carried_usage(items)
        if used.requests:
            self.add_lambda_usage(run, used, 0)
        for item in items:
            self.table.delete(key(item["pk"]["S"], item["sk"]["S"]))

    def _gate(self, run: RunKey, task_id: str, update: str, values: dict[str, object]) -> GateStatus:
        attributes = self.table.update(
            key(run.pk, schema.gate_sk(task_id)), update, returns="ALL_NEW", ExpressionAttributeValues=values
        )
        assert attributes is not None  # unconditional
        return GateStatus.from_item(attributes)
