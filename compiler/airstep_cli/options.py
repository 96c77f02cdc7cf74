"""Options of the commands that start runs (`airstep run`, `airstep trigger`), checked and typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airstep.contract import parse_time
from airstep_cli.errors import UserError


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
