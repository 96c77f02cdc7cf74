"""The AWS calls a local run makes, as the IAM tests read them: who made each (which local function,
or a state machine with its execution's role, or a try's container), what, and with what."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import boto3

# The local function whose invocation this code runs in (None outside any): one process plays them all.
current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_function", default=None)
# The role of the execution whose Task state makes this call (None: no state machine's), as AWS would use it.
execution_role: contextvars.ContextVar[str | None] = contextvars.ContextVar("execution_role", default=None)


@dataclass(slots=True)
class AwsCall:
    """One AWS API call made in a local run: by which local function (None: none of them, i.e. the
    Step Functions interpreter or the caller), what, with which parameters, and what it got."""

    function: str | None
    service: str
    operation: str
    params: dict[str, Any]
    error: str | None = None
    response: dict[str, Any] | None = None
    role: str | None = None  # made by a state machine's Task state: with its execution's role


def record(call: AwsCall) -> None:
    """Keep `call` among the local session's recorded calls, when it records them."""
    calls = getattr(boto3.DEFAULT_SESSION, "calls", None)
    if calls is not None:
        calls.append(call)
