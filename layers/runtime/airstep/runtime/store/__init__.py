"""The metadata store: DAGs, runs, task-instance tries, return values, gates, pools and assets in one
DynamoDB table.

One module per entity (`dags`, `runs`, `task_instances`, `gates`, `pools`, `assets`) over one codec (`codec.Table`);
`schema` has the keys and indexes. `MetadataStore` is the facade every caller uses.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

from airstep.runtime.clients import registry
from airstep.runtime.constants import RETENTION_DAYS_ENV, TABLE_NAME_ENV
from airstep.runtime.store.assets import Assets
from airstep.runtime.store.codec import Table
from airstep.runtime.store.dags import DagRecord, DagRecords, FileRecord, ImportErrorRecord
from airstep.runtime.store.deadline_alerts import Deadlines
from airstep.runtime.store.gates import Gates, GateStatus
from airstep.runtime.store.pools import PoolRecord, Pools
from airstep.runtime.store.runs import RunKey, RunRecord, RunRecords
from airstep.runtime.store.schema import TABLE_SCHEMA, create_table
from airstep.runtime.store.slots import QueuedRun, RunSlots
from airstep.runtime.store.task_instances import FinishedInstances, TaskInstance, TaskInstances

DEFAULT_RETENTION_DAYS = 365


class MetadataStore(DagRecords, RunRecords, RunSlots, TaskInstances, Gates, Pools, Assets, Deadlines):
    """Reads and writes run metadata. Pass `client` (tests, local engine) or let it build one. Runs,
    task instances and gates expire `retention_days` after their last write (AIRSTEP_RETENTION_DAYS)."""

    def __init__(self, table_name: str | None = None, *, client: Any = None, retention_days: int | None = None) -> None:
        days = retention_days or int(os.environ.get(RETENTION_DAYS_ENV, DEFAULT_RETENTION_DAYS))
        table = table_name or os.environ[TABLE_NAME_ENV]
        self.table = Table(table, client or boto3.client("dynamodb"), retention_seconds=days * 86_400)
        self.finished = FinishedInstances()


__all__ = [
    "TABLE_SCHEMA",
    "DagRecord",
    "FileRecord",
    "GateStatus",
    "ImportErrorRecord",
    "MetadataStore",
    "PoolRecord",
    "QueuedRun",
    "RunKey",
    "RunRecord",
    "TaskInstance",
    "create_table",
    "metadata_store",
]


def metadata_store() -> MetadataStore:
    """The process's metadata store (the table named by AIRSTEP_TABLE_NAME), made on first use."""
    return registry.get("metadata_store", MetadataStore)
