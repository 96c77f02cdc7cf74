"""Assets updated from outside airstep: S3 object events (as S3 sends them to EventBridge) and the
messages of SQS queues that an `AssetWatcher` watches (as a Lambda event source mapping delivers them).

An `s3://bucket/path` asset that a DAG is scheduled on is updated when an object is created at
`path`, or under it (`path/...`): a folder of files is one asset, as a data lake's table is. Nothing
polls: the bucket sends its events to EventBridge, a rule of the environment (template.yaml, its
AssetBuckets) delivers them here, and the asset's consumers are asked to run as after a task's
outlets. An asset with `watchers=[AssetWatcher(name, MessageQueueTrigger(...))]` is updated by each
message of the queue, its `extra` what Airflow's triggerer records (`from_trigger`, and the payload
of SqsSensorTrigger's event with that one message). A delivery of the same object event, or the same
message, again records nothing.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from airstep.runtime import assets
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.store import MetadataStore, metadata_store
from airstep.runtime.store.assets import AssetEvent, bucket_source, queue_source, s3_location
from airstep.runtime.store.codec import TransactionConflict

logger = Logger(service=SERVICE_NAME)

OBJECT_CREATED = "Object Created"
# A message, at most (as JSON: mostly its body): a run carries its events (64 KB in all, airstep.runtime.assets)
MAX_MESSAGE_BYTES = 16_384
TRIGGER_EVENT_SUCCESS = "success"  # the status of SqsSensorTrigger's event (Airflow's amazon provider)


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    """An object S3 says was created (an EventBridge event of source aws.s3)."""

    bucket: str
    key: str
    time: str  # ISO-8601, UTC
    sequencer: str  # S3's order of the key's events: with the key, what makes the event unique
    facts: dict[str, Any]  # size, etag, version_id, reason: what an asset event's `extra` carries

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ObjectCreated:
        """Raises ValueError for anything but an S3 Object Created event."""
        if event.get("source") != "aws.s3" or event.get("detail-type") != OBJECT_CREATED:
            raise ValueError(f"not an S3 {OBJECT_CREATED} event: {event.get('source')!r} {event.get('detail-type')!r}")
        detail = event["detail"]
        found = detail["object"]
        # the key comes form-encoded (a space as '+'), as AWS's Powertools decodes it
        key = urllib.parse.unquote_plus(found["key"])
        at = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).astimezone(UTC)
        facts = {
            "size": found.get("size"),
            "etag": found.get("etag"),
            "version_id": found.get("version-id"),
            "reason": detail.get("reason"),
        }
        sequencer = found.get("sequencer") or str(event["id"])
        kept = {name: value for name, value in facts.items() if value is not None}
        return cls(detail["bucket"]["name"], key, at.isoformat(), sequencer, kept)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def covers(uri: str, bucket: str, key: str) -> bool:
    """Whether an object created at `key` of `bucket` updates the asset of `uri`: its key is the
    asset's, or under it (the asset's path is a folder of it), or the asset is the whole bucket."""
    location = s3_location(uri)
    if location is None or location[0] != bucket:
        return False
    path = location[1]
    return not path or key == path or key.startswith(path.rstrip("/") + "/")


def object_events(store: MetadataStore, created: ObjectCreated) -> list[AssetEvent]:
    """The events of the assets (that DAGs are scheduled on) that the object updates, one per asset."""
    watching = store.watched(bucket_source(created.bucket))
    named = {w.name: w.uri for w in watching if covers(w.uri, created.bucket, created.key)}
    source = {"bucket": created.bucket, "key": created.key, "sequencer": created.sequencer}
    return [AssetEvent(name, uri, created.time, source, created.facts) for name, uri in sorted(named.items())]


def record_object(store: MetadataStore, created: ObjectCreated) -> dict[str, Any]:
    """Record the object's asset events and queue them for their consumers; the consumers are
    asked to run (start-run, asynchronously)."""
    due: list[str] = []
    events = object_events(store, created)
    for event in events:
        consumers = assets.record(store, event)
        logger.info("asset updated", extra={"asset": event.name, "object": created.uri, "consumers": consumers})
        due += consumers
    assets.announce(due)
    return {"object": created.uri, "assets": [e.name for e in events], "consumers": sorted(set(due))}


class UnrecordableMessage(ValueError):
    """A message that makes no asset event: it stays on its queue (its redrive policy decides)."""


def sqs_message(record: dict[str, Any]) -> dict[str, Any]:
    """A message (a record of the event source mapping's batch) as SqsSensorTrigger hands it on:
    what SQS's ReceiveMessage gives when asked for no attributes."""
    return {
        "MessageId": record["messageId"],
        "ReceiptHandle": record["receiptHandle"],
        "MD5OfBody": record["md5OfBody"],
        "Body": record["body"],
    }


def message_event(name: str, uri: str, record: dict[str, Any]) -> AssetEvent:
    """The asset's event for an SQS message: sent when the message was, from the queue and the
    message's id (what a redelivery has again), with the `extra` Airflow's triggerer records for an
    SqsSensorTrigger event of that message."""
    sent = datetime.fromtimestamp(int(record["attributes"]["SentTimestamp"]) / 1000, UTC)
    message = sqs_message(record)
    size = len(json.dumps(message))
    if size > MAX_MESSAGE_BYTES:
        raise UnrecordableMessage(f"the message is {size:,} bytes as an asset event, over {MAX_MESSAGE_BYTES:,}")
    source = {"queue": record["eventSourceARN"], "message_id": record["messageId"]}
    extra = {"from_trigger": True, "payload": {"status": TRIGGER_EVENT_SUCCESS, "message_batch": [message]}}
    return AssetEvent(name, uri, sent.isoformat(), source, extra)


def record_messages(store: MetadataStore, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Record each message as an event of the assets that watch its queue, and queue it for their
    consumers (who are asked to run). A message that could not be recorded is reported back, so
    that SQS delivers it again (the mapping's ReportBatchItemFailures), and on a FIFO queue so is
    every later one of the batch (they wait behind it, in order); the others are deleted."""
    failed: list[str] = []
    due: list[str] = []
    try:
        for index, record in enumerate(records):
            try:
                due += _record_message(store, record)
            except (ClientError, TransactionConflict, UnrecordableMessage) as exc:
                queue, message_id = record["eventSourceARN"], record["messageId"]
                logger.warning(
                    "message not recorded", extra={"queue": queue, "message_id": message_id, "error": str(exc)}
                )
                later = records[index + 1 :] if queue.endswith(".fifo") else []
                failed += [message_id, *(r["messageId"] for r in later)]
                if later:
                    break
    finally:  # what was recorded is due, even if a later message fails the whole batch
        assets.announce(due)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _record_message(store: MetadataStore, record: dict[str, Any]) -> list[str]:
    watching = {w.name: w.uri for w in store.watched(queue_source(record["eventSourceARN"]))}
    if not watching:  # a mapping that outlived its last watcher
        raise UnrecordableMessage("no asset watches the queue")
    events = [message_event(name, uri, record) for name, uri in sorted(watching.items())]
    due = []
    for event in events:
        consumers = assets.record(store, event)
        logger.info(
            "asset updated", extra={"asset": event.name, "message_id": record["messageId"], "consumers": consumers}
        )
        due += consumers
    return due


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An EventBridge event of an object created in a bucket of the environment's AssetBuckets, or a
    batch of messages of queues that AssetWatchers watch (from the environment's AssetQueues)."""
    if event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        return record_messages(metadata_store(), event["Records"])
    return record_object(metadata_store(), ObjectCreated.from_event(event))
