"""Assets updated from outside airstep: S3 object events, as S3 sends them to EventBridge.

An `s3://bucket/path` asset that a DAG is scheduled on is updated when an object is created at
`path`, or under it (`path/...`): a folder of files is one asset, as a data lake's table is. Nothing
polls: the bucket sends its events to EventBridge, a rule of the environment (template.yaml, its
AssetBuckets) delivers them here, and the asset's consumers are asked to run as after a task's
outlets. A delivery of the same object event again records nothing.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from airstep.runtime import assets
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.store import MetadataStore, metadata_store
from airstep.runtime.store.assets import AssetEvent, s3_location

logger = Logger(service=SERVICE_NAME)

OBJECT_CREATED = "Object Created"


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
    named = {w.name: w.uri for w in store.watched(created.bucket) if covers(w.uri, created.bucket, created.key)}
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


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An EventBridge event of an object created in a bucket of the environment's AssetBuckets."""
    return record_object(metadata_store(), ObjectCreated.from_event(event))
