"""Options shared by the commands (where their metadata is) and those of the commands that start runs
(`airstep run`, `airstep trigger`), checked and typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from airstep.contract import parse_time
from airstep_cli.errors import UserError

StackOption = Annotated[str | None, typer.Option("--stack", help="deployed stack name (default: local runs)")]
RegionOption = Annotated[str | None, typer.Option("--region", help="AWS region of the stack")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


@dataclass(frozen=True, slots=True)
class RunOptions:
    logical_date: datetime | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    fast_retries: bool = False


def run_options(logical_date: str | None, conf: str | None, fast_retries: bool = False) -> RunOptions:
    """Parse `--logical-date` and `--conf`; UserError naming the option when one is malformed."""
    try:
        when = parse_time(logical_date)
    except ValueError:
        raise UserError([f"--logical-date: {logical_date!r} is not an ISO-8601 date-time"]) from None
    return RunOptions(logical_date=when, conf=json_object("--conf", conf), fast_retries=fast_retries)


def json_object(option: str, text: str | None) -> dict[str, Any]:
    """An option holding a JSON object (a run's conf); {} if not given, UserError naming the option."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError([f"{option}: not valid JSON ({exc.msg} at column {exc.colno})"]) from None
    if not isinstance(value, dict):
        raise UserError([f"{option}: must be a JSON object"])
    return value


def read_secrets(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a --secrets file; errors name the file and line, never a secret value."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError([f"{path}: cannot read file ({exc.strerror})"]) from None
    except json.JSONDecodeError as exc:
        raise UserError([f"{path}:{exc.lineno}: not valid JSON ({exc.msg})"]) from None
    except UnicodeDecodeError:
        raise UserError([f"{path}: not UTF-8"]) from None
    unknown = set(data) - {"connections", "variables"} if isinstance(data, dict) else {"?"}
    if unknown:
        raise UserError([f'{path}: expected an object with "connections" and/or "variables"'])
    sections = []
    for section in ("connections", "variables"):
        entries = data.get(section, {})
        if not isinstance(entries, dict):
            raise UserError([f'{path}: "{section}" must be an object of name: value'])
        sections.append(entries)
    for conn_id, value in sections[0].items():
        if not isinstance(value, (str, dict)):
            raise UserError([f"{path}: connection {conn_id!r} must be a URI string or an object"])
    return sections[0], sections[1]
