"""The audit trail from the CLI's side: the record each change made here leaves (who made it: the
caller's AWS identity with --stack, the local user for local runs), and `airstep audit`, which lists
them. The records themselves: airstep.runtime.audit."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

from airstep.runtime.audit import (
    AuditAction,
    AuditLog,
    AuditRecord,
    CloudWatchAuditLog,
    FileAuditLog,
    Via,
    local_principal,
    masked,
    now,
)
from airstep_cli.errors import UserError
from airstep_cli.metadata import LOCAL_STATE, Target, stack_outputs
from airstep_cli.options import JsonOption, RegionOption, StackOption
from airstep_cli.output import err, fail, out

LOCAL_AUDIT = LOCAL_STATE.parent / "audit.jsonl"
AUDIT_GROUP_OUTPUT = "AuditLogGroupName"
# `airstep run` started by the UI says so (the UI's trigger runs it in the background)
VIA_ENV = "AIRSTEP_AUDIT_VIA"
_RELATIVE = re.compile(r"(\d+)([mhdw])")
COLUMNS = ("at", "principal", "via", "action", "dag_id", "run_id", "outcome", "details")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def record_change(
    target: Target | None,
    action: AuditAction,
    dag_id: str,
    run_id: str | None = None,
    outcome: str | None = None,
    arguments: dict[str, Any] | None = None,
    via: Via | None = None,
) -> None:
    """Leave the audit record of a change just made (`target` None: in the local runs here). The change
    stands whatever happens here: a record that cannot be written is a warning, never a failure."""
    try:
        chosen = via or Via(os.environ.get(VIA_ENV, Via.CLI.value))
        log, principal = _writer(target)
        log.append(AuditRecord(now(), action, principal, chosen, dag_id, run_id, outcome, masked(arguments or {})))
    except Exception as exc:  # noqa: BLE001 - whatever it is, the change is made: say it is unrecorded
        err.print(f"warning: the audit record of this {action.value} was not written: {exc}", markup=False)


def _writer(target: Target | None) -> tuple[AuditLog, str]:
    if target is None or target.stack is None:
        return FileAuditLog(LOCAL_AUDIT), local_principal()
    import boto3

    group = _audit_group(target.stack, target.audit_group)
    identity = boto3.client("sts", region_name=target.region).get_caller_identity()
    return CloudWatchAuditLog(target.logs, group), str(identity["Arn"])


def audit_log(stack: str | None, region: str | None) -> AuditLog:
    """Where the environment's audit records are: the stack's audit log group, or the local file."""
    if not stack:
        return FileAuditLog(LOCAL_AUDIT)
    import boto3

    group = _audit_group(stack, stack_outputs(stack, region).get(AUDIT_GROUP_OUTPUT))
    return CloudWatchAuditLog(boto3.client("logs", region_name=region), group)


def _audit_group(stack: str, group: str | None) -> str:
    """The stack's audit log group; UserError if the stack predates the audit trail."""
    if not group:
        raise UserError([f"--stack {stack}: no {AUDIT_GROUP_OUTPUT} output; update the stack (sam deploy)"])
    return group


def parse_since(text: str | None, now_at: datetime | None = None) -> datetime | None:
    """`--since`: an ISO-8601 date or date-time (UTC unless it says), or an age: 30m, 12h, 7d, 2w."""
    if not text:
        return None
    if match := _RELATIVE.fullmatch(text.strip()):
        return (now_at or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError([f"--since: {text!r} is neither an ISO-8601 date(-time) nor an age like 7d or 12h"]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def audit(
    dag: Annotated[str | None, typer.Option("--dag", help="only this DAG's records")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 date(-time), or an age: 12h, 7d")] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who changed what: DAG uploads and deletions, manual triggers, backfills, clears, marks, pauses
    (oldest first), from the stack's audit log group or the local runs here."""
    try:
        moment = parse_since(since)
        records = audit_log(stack, region).read(dag, moment)
    except UserError as exc:
        fail(exc.lines)
    except Exception as exc:  # noqa: BLE001 - an AWS error reading the log group: named, no traceback
        fail([f"--stack {stack}: cannot read the audit records ({exc})"])
    if as_json:
        print(json.dumps([json.loads(r.to_json()) for r in records], indent=2))
        return
    if not records:
        about = (f" for DAG {escape(dag)}" if dag else "") + (f" since {since}" if since else "")
        out.print(f"no audit records{about}")
        return
    for shown in (row(r) for r in records):  # lines, not a table: no column cuts a principal or a run_id short
        out.print("  ".join(str(shown[c]) if shown[c] is not None else "-" for c in COLUMNS), markup=False)


def row(record: AuditRecord) -> dict[str, Any]:
    """An audit record as the CLI's table and the UI show it."""
    details = dict(record.arguments)
    if record.file:
        details["file"] = record.file
    if record.version_id:
        details["version"] = record.version_id
    text = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(details.items()))
    return {
        "at": record.at,
        "principal": record.principal,
        "via": record.via.value,
        "action": record.action.value,
        "dag_id": record.dag_id,
        "run_id": record.run_id,
        "outcome": record.outcome,
        "details": text or None,
    }
