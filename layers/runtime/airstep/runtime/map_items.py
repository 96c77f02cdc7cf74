"""The indexes a Distributed Map runs: a JSON array the expand step writes to the XCom bucket
(under `maps/`, which only the task runner writes and only the state machines read), so a mapped
task of any length costs its parent execution a few history events and no state data."""

from __future__ import annotations

import json
import os

from airstep.runtime.constants import XCOM_BUCKET_ENV
from airstep.runtime.xcoms import object_key, put_json

MAP_ITEMS_PREFIX = "maps/"


class MapItemsError(RuntimeError):
    """The environment has no bucket for a Distributed Map's items."""


def map_items_key(dag_id: str, run_id: str, task_id: str) -> str:
    return object_key(MAP_ITEMS_PREFIX, dag_id, run_id, f"{task_id}.json")


def write_map_items(dag_id: str, run_id: str, task_id: str, length: int) -> tuple[str, str]:
    """Write the indexes 0..length-1 for a Distributed Map's ItemReader; returns (bucket, key).
    The same run and task always write the same key and content, so a repeated expand is harmless."""
    bucket = os.environ.get(XCOM_BUCKET_ENV)
    if not bucket:
        raise MapItemsError(
            f"{length:,} instances need a Distributed Map, and no bucket is configured ({XCOM_BUCKET_ENV})"
        )
    key = map_items_key(dag_id, run_id, task_id)
    put_json(bucket, key, json.dumps(list(range(length)), separators=(",", ":")).encode())
    return bucket, key
