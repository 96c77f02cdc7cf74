"""Assets: their events, the DAGs that consume them, and each consumer's queue (Airflow's
AssetDagRunQueue: which of its assets were updated since its last asset-triggered run).

Each asset numbers its events (a counter item), so its events are in one order whatever the clocks
of the functions that record them. An event, a marker of its source (a duplicate delivery finds it
and writes nothing) and its consumers' queue entries are one transaction. A queue entry keeps the
number of the first event queued since the consumer's last asset-triggered run and a version that
every later event raises; the claim deletes the entries as read (same version) and queues the run
in one transaction, so of two claimers one wins and an event recorded meanwhile makes the claim
fail rather than be lost.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from airstep.runtime.store import schema
from airstep.runtime.store.codec import Item, Table, TransactionConflict, key, number, plain, string

MAX_CONSUMERS = 97  # an event, its number, its marker and its consumers' queue entries: one transaction (100 items)
MAX_ATTEMPTS = 12  # writes of one asset's events that lost to others in a row before the caller retries


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


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """An asset updated since the consumer's last asset-triggered run: when first, from which event
    on, and how many times since (its version)."""

    queued_at: str
    first_event: int
    version: int


@dataclass(frozen=True, slots=True)
class WatchedAsset:
    """An asset a DAG is scheduled on that events from outside update: an s3:// asset's objects (one
    created at its key, or under it), or the messages of an SQS queue that an AssetWatcher names."""

    name: str
    uri: str
    dag_id: str


def bucket_source(bucket: str) -> str:
    """Where the watches of a bucket's s3:// assets are kept."""
    return schema.watched_bucket_pk(bucket)


def queue_source(queue_arn: str) -> str:
    """Where the watches of an SQS queue's assets are kept."""
    return schema.watched_queue_pk(queue_arn)


def queue_arn(url: str) -> str:
    """An SQS queue's ARN from its URL (https://sqs.<region>.amazonaws.com[.cn]/<account>/<name>)."""
    parsed = urllib.parse.urlsplit(url)
    region = parsed.netloc.split(".")[1]
    account, name = parsed.path.strip("/").split("/", 1)
    if parsed.netloc.endswith(".cn"):
        partition = "aws-cn"
    else:
        partition = "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def queue_url(arn: str) -> str:
    """An SQS queue's URL from its ARN (`queue_arn` the other way)."""
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def s3_location(uri: str) -> tuple[str, str] | None:
    """The bucket and key (a prefix, for a folder) an s3:// URI names; None for any other URI."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        return None
    return parsed.netloc, urllib.parse.unquote(parsed.path.lstrip("/"))


class Assets:
    table: Table

    def register_consumer(self, asset: str, consumer: Consumer) -> None:
        """The DAG hears of the asset's events from now on."""
        self.table.put(
            {
                **key(schema.asset_pk(asset), schema.consumer_sk(consumer.dag_id)),
                "condition": string(json.dumps(consumer.condition, sort_keys=True)),
            }
        )

    def unregister_consumer(self, asset: str, dag_id: str) -> None:
        """The DAG no longer hears of the asset; what was queued of it for the DAG goes too."""
        self.table.delete(key(schema.asset_pk(asset), schema.consumer_sk(dag_id)))
        self.table.delete(key(schema.asset_queue_pk(dag_id), schema.queued_asset_sk(asset)))

    def watch(self, source: str, asset: WatchedAsset) -> None:
        """The source's events (`bucket_source`, `queue_source`) update the asset for its DAG."""
        item = {"name": string(asset.name), "uri": string(asset.uri), "dag_id": string(asset.dag_id)}
        self.table.put({**key(source, schema.watch_sk(_watch_digest(asset.name, asset.dag_id))), **item})

    def unwatch(self, source: str, asset: str, dag_id: str) -> None:
        self.table.delete(key(source, schema.watch_sk(_watch_digest(asset, dag_id))))

    def watched(self, source: str) -> list[WatchedAsset]:
        """The assets DAGs are scheduled on that the source's events update."""
        return [
            WatchedAsset(item["name"]["S"], item["uri"]["S"], item["dag_id"]["S"])
            for item in self._query(source, schema.WATCH_PREFIX)
        ]

    def consumers(self, asset: str) -> list[Consumer]:
        items = self._query(schema.asset_pk(asset), schema.CONSUMER_PREFIX)
        return [
            Consumer(item["sk"]["S"].removeprefix(schema.CONSUMER_PREFIX), json.loads(item["condition"]["S"]))
            for item in items
        ]

    def add_asset_event(self, event: AssetEvent, consumers: list[str], queued_at: str) -> bool:
        """Record the event as the asset's next number, and queue it for its consumers, in one
        transaction that takes the number only if it is still the next (so events are numbered in
        the order they are written, and a queue entry's first event is the first after its last
        claim); False if an event from the same source was recorded before. A transaction that lost
        to a concurrent one (another event of the asset) is tried again, backing off."""
        pk = schema.asset_pk(event.name)
        source = hashlib.sha256(event.source_id.encode()).hexdigest()[:32]
        for attempt in range(MAX_ATTEMPTS):
            current = self.table.get(key(pk, schema.ASSET_SEQUENCE_SK))
            last = int(current["seq"]["N"]) if current else 0
            taken = "attribute_not_exists(seq)" if current is None else "seq = :last"
            writes: list[dict[str, Any]] = [
                {
                    "Put": {
                        "Item": {**key(pk, schema.SOURCE_PREFIX + source), "expires_at": self.table.expires_at()},
                        "ConditionExpression": "attribute_not_exists(sk)",
                    }
                },
                {
                    "Update": {
                        "Key": key(pk, schema.ASSET_SEQUENCE_SK),
                        "UpdateExpression": "SET seq = :next",
                        "ConditionExpression": taken,
                        "ExpressionAttributeValues": {":next": number(last + 1)}
                        | ({":last": number(last)} if current is not None else {}),
                    }
                },
                {
                    "Put": {
                        "Item": {
                            **key(pk, schema.asset_event_sk(last + 1)),
                            "event": string(json.dumps(event.to_dict(), sort_keys=True)),
                            "expires_at": self.table.expires_at(),
                        }
                    }
                },
            ]
            for dag_id in consumers[:MAX_CONSUMERS]:
                update = "SET queued_at = if_not_exists(queued_at, :at), first_event = if_not_exists(first_event, :n)"
                writes.append(
                    {
                        "Update": {
                            "Key": key(schema.asset_queue_pk(dag_id), schema.queued_asset_sk(event.name)),
                            "UpdateExpression": update + " ADD version :one",
                            "ExpressionAttributeValues": {
                                ":at": string(queued_at),
                                ":n": number(last + 1),
                                ":one": number(1),
                            },
                        }
                    }
                )
            failed = self.table.transact_failures(writes)
            if failed == []:
                return True
            if failed and 0 in failed:
                return False  # recorded before: a duplicate delivery
            time.sleep(random.uniform(0, min(2.0, 0.02 * 2**attempt)))  # a number taken meanwhile, or a conflict
        raise TransactionConflict

    def asset_events(self, asset: str, first: int, limit: int) -> list[AssetEvent]:
        """The asset's events from number `first` on: the newest `limit` of them, oldest first."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": string(schema.asset_pk(asset)),
                ":low": string(schema.asset_event_sk(first)),
                ":high": string(schema.ASSET_EVENT_PREFIX + "~"),
            },
            ConsistentRead=True,
            ScanIndexForward=False,
            limit=limit,
        )
        return [AssetEvent.from_dict(json.loads(item["event"]["S"])) for item in reversed(items)]

    def latest_asset_events(self, asset: str, limit: int = 1) -> list[AssetEvent]:
        return self.asset_events(asset, 0, limit)[::-1]

    def queued_assets(self, dag_id: str) -> dict[str, QueueEntry]:
        """The consumer's queue, by asset name."""
        queued = {}
        for item in self._query(schema.asset_queue_pk(dag_id), schema.QUEUED_ASSET_PREFIX):
            data = plain(item)
            name = data["sk"].removeprefix(schema.QUEUED_ASSET_PREFIX)
            queued[name] = QueueEntry(data["queued_at"], int(data["first_event"]), int(data["version"]))
        return queued

    def claim_asset_queue(self, dag_id: str, queued: dict[str, QueueEntry], also: list[dict[str, Any]]) -> bool:
        """Take the queue entries read (each at the version read) for one run, and write `also`
        (TransactWriteItems parts: the run's place in its DAG's run queue) with them; False if
        another claimer took them first or an event arrived meanwhile."""
        writes: list[dict[str, Any]] = [
            {
                "Delete": {
                    "Key": key(schema.asset_queue_pk(dag_id), schema.queued_asset_sk(name)),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": number(entry.version)},
                }
            }
            for name, entry in sorted(queued.items())
        ]
        return self.table.transact_failures(writes + also) == []  # lost to an event's write: it evaluates again

    def _query(self, pk: str, prefix: str) -> list[Item]:
        return self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": string(pk), ":prefix": string(prefix)},
            ConsistentRead=True,
        )


def _watch_digest(asset: str, dag_id: str) -> str:
    return hashlib.sha256(f"{asset}\0{dag_id}".encode()).hexdigest()[:32]
