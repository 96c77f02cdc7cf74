"""Deployed DAGs and the import errors of DAG files that could not be deployed."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from airstep.contract import Schedule
from airstep.runtime.store import schema
from airstep.runtime.store.codec import Item, Table, key, plain, string


@dataclass(frozen=True, slots=True)
class DagRecord:
    """A DAG as deployed: where its file is, which version runs, its state machine and schedule."""

    dag_id: str
    file: str
    version: str
    schedule: Schedule | None
    timezone: str
    state_machine_arn: str
    schedule_name: str | None = None
    paused: bool = False
    paused_at: str | None = None  # when it was paused: unpausing catches up from there
    removed: bool = False
    compiled_at: str | None = None
    tasks: int = 0
    max_active_runs: int = 16
    catchup: bool = False
    start_date: str | None = None
    end_date: str | None = None
    tags: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # defaults and [name, schema] pairs, in order:
    param_schemas: list[list[Any]] = field(default_factory=list)  # a trigger's conf is validated with them
    model: str | None = None  # where its graph model is (s3://): what a clear of its runs reads
    # its own IAM role outlived its AWS operators (or the DAG) while runs used it: a later deploy deletes it
    role_kept: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["schedule"] = self.schedule.to_dict() if self.schedule else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DagRecord:
        schedule = Schedule.from_dict(data["schedule"]) if data.get("schedule") else None
        return cls(**{**data, "schedule": schedule})

    def retired(self) -> DagRecord:
        """The record of a DAG whose file was removed: no schedule, history kept."""
        return dataclasses.replace(self, removed=True, schedule_name=None)


@dataclass(frozen=True, slots=True)
class ImportErrorRecord:
    """Why a DAG file could not be deployed: `errors` are `{"line", "message"}`."""

    file: str
    version: str
    errors: list[dict[str, Any]]
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "version": self.version, "errors": self.errors, "at": self.at}


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A DAG file as last parsed: the key of what it was parsed from (its version, its imports',
    the bundle's data files), its DAGs, the bundle modules it imported, whether it failed, and the
    S3 version parsed and what became of it (deployed, import_error, refused: the audit trail's)."""

    file: str
    parse_key: str
    dag_ids: list[str]
    imports: list[str]
    failed: bool = False
    version_id: str | None = None
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


class DagRecords:
    table: Table

    def put_file(self, record: FileRecord) -> None:
        pk = schema.file_pk(record.file)
        self.table.put(_listed(pk, schema.FILE_SK, schema.ALL_FILES, record.file, record.to_dict()))

    def delete_file(self, file: str) -> None:
        self.table.delete(key(schema.file_pk(file), schema.FILE_SK))

    def get_file(self, file: str) -> FileRecord | None:
        item = self.table.get(key(schema.file_pk(file), schema.FILE_SK))
        return FileRecord(**_record(item)) if item else None

    def list_files(self) -> list[FileRecord]:
        return [FileRecord(**_record(item)) for item in self._listing(schema.ALL_FILES)]

    def latest_bundle(self) -> str | None:
        item = self.table.get(key(schema.BUNDLES_PK, schema.LATEST_SK))
        return plain(item)["bundle_id"] if item else None

    def put_latest_bundle(self, bundle_id: str) -> None:
        self.table.put({**key(schema.BUNDLES_PK, schema.LATEST_SK), "bundle_id": string(bundle_id)})

    def put_dag(self, record: DagRecord) -> None:
        """Create or replace a DAG's record (what the compile function deployed)."""
        item = _listed(schema.dag_pk(record.dag_id), schema.DAG_SK, schema.ALL_DAGS, record.dag_id, record.to_dict())
        self.table.put({**item, "dag_id": string(record.dag_id)})

    def get_dag(self, dag_id: str) -> DagRecord | None:
        item = self.table.get(key(schema.dag_pk(dag_id), schema.DAG_SK))
        return DagRecord.from_dict(_record(item)) if item else None

    def list_dags(self) -> list[DagRecord]:
        return [DagRecord.from_dict(_record(item)) for item in self._listing(schema.ALL_DAGS)]

    def put_import_error(self, record: ImportErrorRecord) -> None:
        pk = schema.file_pk(record.file)
        self.table.put(_listed(pk, schema.IMPORT_ERROR_SK, schema.ALL_IMPORT_ERRORS, record.file, record.to_dict()))

    def clear_import_error(self, file: str) -> None:
        self.table.delete(key(schema.file_pk(file), schema.IMPORT_ERROR_SK))

    def list_import_errors(self) -> list[ImportErrorRecord]:
        return [ImportErrorRecord(**_record(item)) for item in self._listing(schema.ALL_IMPORT_ERRORS)]

    def _listing(self, listing: str) -> list[Item]:
        return self.table.query(
            IndexName=schema.LISTING_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": string(listing)},
        )


def _listed(pk: str, sk: str, listing: str, sort: str, record: dict[str, Any]) -> Item:
    """An item holding `record` as JSON, listed in the index under `listing`, sorted by `sort`."""
    return {
        **key(pk, sk),
        "gsi1pk": string(listing),
        "gsi1sk": string(sort),
        "record": string(json.dumps(record, sort_keys=True)),
    }


def _record(item: Item) -> dict[str, Any]:
    return json.loads(plain(item)["record"])
