"""The audit trail: who changed what in an environment, kept append-only.

Every DAG upload and deletion (recorded by the compile function from the S3 event: the principal that
made it, the object's version, the outcome) and every manual trigger, backfill, clear, mark, pause and
unpause (recorded by the CLI and the UI with the caller's identity) is one JSON line. In AWS the lines
go to the environment's audit log group in CloudWatch Logs, which the functions may only append to
(PutLogEvents) and whose retention template.yaml sets; locally to `.airstep/audit.jsonl`, naming the
local user. Arguments are stored with secrets masked.
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from airstep.secrets_masker import MASK, is_sensitive, redact
from airstep.states import RunType

AUDIT_LOG_GROUP_ENV = "AIRSTEP_AUDIT_LOG_GROUP"
NOT_WRITTEN_METRIC = "AuditRecordsNotWritten"  # a deploy whose audit record could not be written (alarmed on)
MAX_EVENT_BYTES = 200_000  # CloudWatch Logs takes events of up to 256 KB (with 26 bytes of overhead)


class AuditAction(StrEnum):
    UPLOAD = "upload"
    DELETE = "delete"
    TRIGGER = "trigger"
    BACKFILL = RunType.BACKFILL.value  # (the word is spelled once, in airstep.states)
    CLEAR = "clear"
    MARK = "mark"
    PAUSE = "pause"
    UNPAUSE = "unpause"


class Via(StrEnum):
    """Where the change was made: an S3 upload or deletion, the CLI, or the UI."""

    S3 = "s3"
    CLI = "cli"
    UI = "ui"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change: when, what, who (`principal`), through what, on which DAG/run/file, how it ended."""

    at: str
    action: AuditAction
    principal: str
    via: Via
    dag_id: str | None = None
    run_id: str | None = None
    outcome: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    file: str | None = None
    version_id: str | None = None

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {})}
        text = json.dumps(data, sort_keys=True, default=str)
        if len(text.encode()) > MAX_EVENT_BYTES:  # a huge conf: the record stays, its arguments are cut
            data["arguments"] = {"truncated": text[: MAX_EVENT_BYTES // 2]}
            text = json.dumps(data, sort_keys=True, default=str)
        return text

    @classmethod
    def from_json(cls, text: str) -> AuditRecord:
        data = json.loads(text)
        return cls(
            at=data["at"],
            action=AuditAction(data["action"]),
            principal=data["principal"],
            via=Via(data["via"]),
            dag_id=data.get("dag_id"),
            run_id=data.get("run_id"),
            outcome=data.get("outcome"),
            arguments=data.get("arguments", {}),
            file=data.get("file"),
            version_id=data.get("version_id"),
        )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def masked(arguments: Any, name: str = "") -> Any:
    """`arguments` as an audit record keeps them: a value under a sensitive name (Airflow's list:
    password, token, api_key...) is ***, and every secret the process knows is masked in the rest."""
    if name and is_sensitive(name):
        return MASK
    if isinstance(arguments, dict):
        return {str(k): masked(v, str(k)) for k, v in arguments.items()}
    if isinstance(arguments, (list, tuple)):
        return [masked(v) for v in arguments]
    if isinstance(arguments, str):
        return redact(arguments)
    return arguments


def local_principal() -> str:
    """Who acts on a machine's local runs: its user."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name (a container without one)
        return "local:unknown"


class AuditLog(Protocol):
    def append(self, record: AuditRecord) -> None: ...
    def read(self, dag_id: str | None = None, since: datetime | None = None) -> list[AuditRecord]: ...


class FileAuditLog:
    """The local audit trail: one JSON line per record, appended."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: AuditRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(record.to_json() + "\n")

    def read(self, dag_id: str | None = None, since: datetime | None = None) -> list[AuditRecord]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return _chosen(_parsed(lines), dag_id, since)


class CloudWatchAuditLog:
    """The environment's audit log group: each writer appends to its own stream of the day
    (`<writer>/YYYY/MM/DD`), created on its first record (creating a stream alters nothing)."""

    def __init__(self, logs: Any, group: str, writer: str = Via.CLI.value) -> None:
        self.logs = logs
        self.group = group
        self.writer = writer

    def append(self, record: AuditRecord) -> None:
        from botocore.exceptions import ClientError

        stream = f"{self.writer}/{record.at[:10].replace('-', '/')}"
        # stamped now: CloudWatch Logs drops (without an error) events over 14 days old or 2 hours ahead
        event = {"timestamp": int(time.time() * 1000), "message": record.to_json()}
        try:
            response = self.logs.put_log_events(logGroupName=self.group, logStreamName=stream, logEvents=[event])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            try:
                self.logs.create_log_stream(logGroupName=self.group, logStreamName=stream)
            except ClientError as created:  # another writer created it meanwhile
                if created.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
            response = self.logs.put_log_events(logGroupName=self.group, logStreamName=stream, logEvents=[event])
        if response.get("rejectedLogEventsInfo"):
            raise RuntimeError(f"CloudWatch Logs rejected the audit record: {response['rejectedLogEventsInfo']}")

    def read(self, dag_id: str | None = None, since: datetime | None = None) -> list[AuditRecord]:
        request: dict[str, Any] = {"logGroupName": self.group}
        if since is not None:
            request["startTime"] = int(since.timestamp() * 1000)
        if dag_id is not None:  # CloudWatch Logs filters JSON events itself (checked again below)
            request["filterPattern"] = f'{{ $.dag_id = "{dag_id}" }}'
        return _chosen(self._messages(request), dag_id, since)

    def _messages(self, request: dict[str, Any]) -> Iterator[AuditRecord]:
        for page in self.logs.get_paginator("filter_log_events").paginate(**request):
            yield from _parsed(event["message"] for event in page.get("events", []))


def _parsed(lines: Iterable[str]) -> Iterator[AuditRecord]:
    """The audit records among `lines` (a line cut short, or not an audit record, is passed over)."""
    for line in lines:
        try:
            yield AuditRecord.from_json(line)
        except (ValueError, KeyError, TypeError):
            continue


def _chosen(records: Iterator[AuditRecord], dag_id: str | None, since: datetime | None) -> list[AuditRecord]:
    found = [r for r in records if dag_id in (None, r.dag_id) and (since is None or _moment(r.at) >= since)]
    return sorted(found, key=lambda r: _moment(r.at))


def _moment(at: str) -> datetime:
    return datetime.fromisoformat(at)
