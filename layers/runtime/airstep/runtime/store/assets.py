"""Assets: their events, the DAGs that consume them, and each consumer's queue (Airflow's
AssetDagRunQueue: which of its assets were updated since its last asset-triggered run).

An event and its queue entries are written in one transaction that fails if the event is known, so
an event delivered twice queues nothing twice. A consumer's queue is claimed by one transaction that
deletes the entries it read (each as read) and records the run they trigger: of two claimers, one
wins; an entry added meanwhile stays for the next run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airstep.runtime.store import schema
from airstep.runtime.store.codec import Item, Table, key, plain, string

MAX_CONSUMERS = 99  # an event and its consumers' queue entries are one transaction (100 items)


@dataclass(frozen=True, slots=True)
class AssetEvent:
    """An update of an asset: when, by what (a task instance, an S3 object), with what extra."""

    name: str
    uri: str
    timestamp: str  # ISO-8601, UTC
    source: dict[str, Any]  # {"dag_id", "run_id", "task_id", "map_index"} or {"bucket", "key", ...}
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def source_id(self) -> str:
        """What makes the event unique at its timestamp (a duplicate delivery has the same)."""
        return json.dumps(self.source, sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.name,
            "uri": self.uri,
            "timestamp": self.timestamp,
            "source": self.source,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AssetEvent:
        return cls(data["asset"], data["uri"], data["timestamp"], dict(data["source"]), dict(data.get("extra") or {}))


@dataclass(frozen=True, slots=True)
class Consumer:
    """A DAG scheduled on assets, and its condition (airstep.runtime.assets evaluates it)."""

    dag_id: str
    condition: dict[str, Any]


class Assets:
    table: Table

    def register_consumer(self, asset: str, consumer: Consumer, now: str) -> None:
        """The DAG hears of the asset's events from now on; its first asset-triggered run consumes
        the events since it first did (as Airflow without catchup)."""
        self.table.put(
            {
                **key(schema.asset_pk(asset), schema.consumer_sk(consumer.dag_id)),
                "condition": string(json.dumps(consumer.condition, sort_keys=True)),
            }
        )
        self.table.update(
            key(schema.asset_queue_pk(consumer.dag_id), schema.ASSET_QUEUE_LAST_SK),
            "SET run_after = if_not_exists(run_after, :now)",
            ExpressionAttributeValues={":now": string(now)},
        )

    def unregister_consumer(self, asset: str, dag_id: str) -> None:
        self.table.delete(key(schema.asset_pk(asset), schema.consumer_sk(dag_id)))

    def consumers(self, asset: str) -> list[Consumer]:
        items = self._query(schema.asset_pk(asset), schema.CONSUMER_PREFIX)
        return [
            Consumer(item["sk"]["S"].removeprefix(schema.CONSUMER_PREFIX), json.loads(item["condition"]["S"]))
            for item in items
        ]

    def add_asset_event(self, event: AssetEvent, consumers: list[str]) -> bool:
        """Record the event and queue it for its consumers; False if it was recorded before."""
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "Item": {
                        **key(schema.asset_pk(event.name), schema.asset_event_sk(event.timestamp, event.source_id)),
                        "event": string(json.dumps(event.to_dict(), sort_keys=True)),
                        "expires_at": self.table.expires_at(),
                    },
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
        ]
        for dag_id in consumers[:MAX_CONSUMERS]:
            writes.append(
                {
                    "Update": {
                        "Key": key(schema.asset_queue_pk(dag_id), schema.queued_asset_sk(event.name)),
                        "UpdateExpression": "SET queued_at = if_not_exists(queued_at, :at)",
                        "ExpressionAttributeValues": {":at": string(event.timestamp)},
                    }
                }
            )
        return self.table.transact(writes)

    def asset_events(self, asset: str, after: str | None, until: str, limit: int = 100) -> list[AssetEvent]:
        """The asset's events with `after` < timestamp <= `until`, oldest first."""
        low = schema.asset_event_sk(after, "\uffff") if after else schema.ASSET_EVENT_PREFIX
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": string(schema.asset_pk(asset)),
                ":low": string(low),
                ":high": string(schema.asset_event_sk(until, "\uffff")),
            },
            ConsistentRead=True,
            limit=limit,
        )
        return [AssetEvent.from_dict(json.loads(item["event"]["S"])) for item in items]

    def latest_asset_events(self, asset: str, limit: int = 1) -> list[AssetEvent]:
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": string(schema.asset_pk(asset)),
                ":prefix": string(schema.ASSET_EVENT_PREFIX),
            },
            ConsistentRead=True,
            ScanIndexForward=False,
            limit=limit,
        )
        return [AssetEvent.from_dict(json.loads(item["event"]["S"])) for item in items]

    def queued_assets(self, dag_id: str) -> tuple[dict[str, str], str | None]:
        """The consumer's queue (asset name -> first queued at) and its last asset-triggered run's
        run_after."""
        queued, last = {}, None
        for item in self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": string(schema.asset_queue_pk(dag_id))},
            ConsistentRead=True,
        ):
            data = plain(item)
            if data["sk"] == schema.ASSET_QUEUE_LAST_SK:
                last = data["run_after"]
            else:
                queued[data["sk"].removeprefix(schema.QUEUED_ASSET_PREFIX)] = data["queued_at"]
        return queued, last

    def claim_asset_queue(
        self, dag_id: str, queued: dict[str, str], run_after: str, enqueue: Item | None = None
    ) -> bool:
        """Take the queue entries read (each unchanged) for one run at `run_after`, and write
        `enqueue` (the run's item in its DAG's run queue) with them; False if another claimer took
        them first."""
        writes: list[dict[str, Any]] = [
            {
                "Delete": {
                    "Key": key(schema.asset_queue_pk(dag_id), schema.queued_asset_sk(name)),
                    "ConditionExpression": "queued_at = :at",
                    "ExpressionAttributeValues": {":at": string(at)},
                }
            }
            for name, at in sorted(queued.items())
        ]
        writes.append(
            {
                "Put": {
                    "Item": {
                        **key(schema.asset_queue_pk(dag_id), schema.ASSET_QUEUE_LAST_SK),
                        "run_after": string(run_after),
                    },
                }
            }
        )
        if enqueue is not None:
            writes.append({"Put": {"Item": enqueue}})
        return self.table.transact(writes)

    def _query(self, pk: str, prefix: str) -> list[Item]:
        return self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": string(pk), ":prefix": string(prefix)},
            ConsistentRead=True,
        )
