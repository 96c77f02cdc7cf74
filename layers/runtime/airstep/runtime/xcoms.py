"""XComs of any size. A try's XComs are stored as one JSON object {key: value}: inline in its task
instance record up to INLINE_XCOM_BYTES, otherwise in the XCom bucket (S3, written and read by the
executor under the task role), the record keeping a reference. A reference is a JSON *string* (the
object's s3:// URI) where an inline value is always a JSON object, so the two never mix up.

Values never enter Step Functions state data either way, and only the executor's memory bounds a
value. The bucket's lifecycle rule removes an object after the stack's XComRetentionDays.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from airstep.runtime.clients import client, registry
from airstep.runtime.constants import XCOM_BUCKET_ENV

INLINE_XCOM_BYTES = 32 * 1024  # a record stays a few read units; refs keep runner payloads small
XCOM_PREFIX = "xcoms/"
_S3 = "s3://"


class XComError(ValueError):
    """An XCom that cannot be stored (not JSON) or read back (its object is gone)."""


@dataclass(frozen=True, slots=True)
class XComOwner:
    """The try whose XComs these are: where a large value is written."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    map_index: int = -1

    def key(self) -> str:
        return object_key(
            XCOM_PREFIX, self.dag_id, self.run_id, self.task_id, str(self.map_index), f"{self.try_number}.json"
        )


def object_key(prefix: str, *parts: str) -> str:
    """The key of an object in the XCom bucket: `prefix` and the parts, each quoted (ids may hold `/`)."""
    return prefix + "/".join(quote(part, safe=":+") for part in parts)


def put_json(bucket: str, key: str, body: bytes) -> str:
    """Write `body` (JSON) to the XCom bucket; returns the object's s3:// URI."""
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return f"{_S3}{bucket}/{key}"


def xcom_bucket(needed_for: str) -> str:
    """The XCom bucket's name; XComError saying what needed it when the environment names none."""
    bucket = os.environ.get(XCOM_BUCKET_ENV)
    if not bucket:
        raise XComError(f"{needed_for} ({XCOM_BUCKET_ENV})")
    return bucket


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI."""
    bucket, _, key = uri.removeprefix(_S3).partition("/")
    return bucket, key


def read_object(uri: str, what: str) -> bytes:
    """An object of the XCom bucket by its s3:// URI; XComError when it cannot be read."""
    bucket, key = s3_location(uri)
    try:
        return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise XComError(
            f"the {what} stored at {uri} cannot be read ({code}): large XComs are kept for the stack's "
            "XComRetentionDays"
        ) from None


def encode_xcoms(owner: XComOwner, values: dict[str, Any]) -> str | None:
    """The try's XComs as stored (None when there are none): inline JSON, or the reference to the
    object they were written to."""
    if not values:
        return None
    try:
        text = json.dumps(values, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise XComError(f"an XCom of task {owner.task_id!r} is not JSON-serialisable: {exc}") from None
    body = text.encode()
    if len(body) <= INLINE_XCOM_BYTES:
        return text
    bucket = xcom_bucket(
        f"the XComs of task {owner.task_id!r} are {len(body):,} bytes as JSON, more than the "
        f"{INLINE_XCOM_BYTES:,} kept in a record, and no XCom bucket is configured"
    )
    return json.dumps(put_json(bucket, owner.key(), body))


def decode_xcoms(text: str | None) -> dict[str, Any] | None:
    """The XComs a record holds (reading a large value's object)."""
    if text is None:
        return None
    if not text.startswith('"'):
        return json.loads(text)
    uri = json.loads(text)
    objects = registry.get("xcom-objects", _ObjectCache)
    body = objects.get(uri)
    if body is None:
        body = read_object(uri, "XComs")
        objects.add(uri, body)
    return json.loads(body)  # parsed afresh each time: a task may change what it was given


class _ObjectCache:
    """The bytes of recently read XCom objects, by URI, up to MAX_BYTES in all: an object is written
    once under its try's own key, so the instances of a mapped task that a warm executor runs read
    their producer's large output from S3 once."""

    MAX_BYTES = 16 * 1024 * 1024

    def __init__(self) -> None:
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, uri: str) -> bytes | None:
        with self._lock:
            body = self._bodies.get(uri)
            if body is not None:
                self._bodies.move_to_end(uri)
            return body

    def add(self, uri: str, body: bytes) -> None:
        if len(body) > self.MAX_BYTES // 4:
            return
        with self._lock:
            if uri in self._bodies:
                return
            self._bodies[uri] = body
            self._size += len(body)
            while self._size > self.MAX_BYTES:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= len(dropped)


HANDOFF_PREFIX = "handoff/"


def park_upstream(owner: XComOwner, upstream: dict[str, Any]) -> str:
    """Write a try's upstream XComs (as stored: inline JSON or references) to the XCom bucket when
    they would make its request too large for Lambda (a reduce over many mapped instances); returns
    the object's URI, which the executor reads back (`fetch_upstream`). The key is the content's
    digest, so the instances of a task mapped over many values share one object (a warm runner
    writes it once)."""
    bucket = xcom_bucket(f"the upstream values of task {owner.task_id!r} need the XCom bucket")
    body = json.dumps(upstream, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(body).hexdigest()
    key = object_key(HANDOFF_PREFIX, owner.dag_id, owner.run_id, f"{digest}.json")
    parked = registry.get("handoff-parked", set)
    if key not in parked:
        put_json(bucket, key, body)
        if len(parked) > 10_000:  # a long-lived process forgets; writing again is harmless
            parked.clear()
        parked.add(key)
    return f"{_S3}{bucket}/{key}"


def fetch_upstream(uri: str) -> dict[str, Any]:
    return json.loads(read_object(uri, "upstream values"))


def is_reference(text: str | None) -> bool:
    return text is not None and text.startswith('"')


def merged_xcoms(earlier: str, later: str | None) -> str:
    """What a try pushed over several pokes: the later pushes win a key (a large, offloaded set is
    not merged: the later one stands)."""
    if later is None:
        return earlier
    if is_reference(earlier) or is_reference(later):
        return later
    return json.dumps({**json.loads(earlier), **json.loads(later)}, separators=(",", ":"))
