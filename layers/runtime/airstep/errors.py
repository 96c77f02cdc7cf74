"""Errors that DAG authors and the runtime raise, and where they point."""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A place in a DAG file: what error messages and the graph model point at."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def caller_location() -> SourceLocation:
    """The innermost frame outside the airstep package: the user's line that defined something."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return SourceLocation("<unknown>", 0)
    return SourceLocation(frame.f_code.co_filename, frame.f_lineno)


class DagDefinitionError(Exception):
    """A DAG file defines something airstep cannot run; carries the file and line to blame."""

    outer_stack: traceback.StackSummary | None = None  # the callers of a collected refusal's catcher

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        self.message = message
        self.location = location or caller_location()
        super().__init__(f"{self.location}: {message}")


_refusals: contextvars.ContextVar[list[DagDefinitionError] | None] = contextvars.ContextVar("refusals", default=None)


@contextlib.contextmanager
def collecting_refusals() -> Iterator[list[DagDefinitionError]]:
    """While a file loads for a report (`airstep compat`): an operator that refuses how it is built is
    recorded in the list, and the file loads on (that operator left half-built), so that one load names
    every refusal rather than the first."""
    collected: list[DagDefinitionError] = []
    token = _refusals.set(collected)
    try:
        yield collected
    finally:
        _refusals.reset(token)


def collected_refusal(error: DagDefinitionError) -> bool:
    """Record `error` if refusals are being collected (see `collecting_refusals`); False otherwise."""
    collected = _refusals.get()
    if collected is None:
        return False
    error.outer_stack = traceback.extract_stack()  # (its traceback ends where it was caught)
    collected.append(error)
    return True


class AirflowException(Exception):
    """Base class of the exceptions a task may raise to steer its own outcome (Airflow's names)."""


class ParamValidationError(AirflowException):
    """A run's params do not satisfy their schemas (Airflow's name): no run is created. `param`
    names the param and `rule` what it fails (the message may quote its value; these never do)."""

    def __init__(self, message: str, param: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.rule = rule  # the schema keyword it fails ("type", "enum", ...; "required": no value)


class AirflowSkipException(AirflowException):
    """Raise inside a task to mark it skipped instead of failed."""


class AirflowFailException(AirflowException):
    """Raise inside a task to fail it at once, without using its remaining retries."""


class PokeNotDone(AirflowException):  # noqa: N818 - not an error: the sensor's criteria are not met yet
    """Raised by a sensor's poke that is not done: the task runner waits and pokes again, or (a time
    sensor's, `until` set) waits until that moment and ends the try without poking again."""

    def __init__(self, until: datetime.datetime | None = None) -> None:
        super().__init__()
        self.until = until


class DownstreamTasksSkipped(AirflowException):
    """Raised by a branching or short-circuiting task: it succeeded, and these downstream task ids
    are skipped whatever their trigger rules (Airflow's exception of the same name)."""

    def __init__(self, tasks: list[str]) -> None:
        super().__init__(f"skipping downstream tasks {tasks}")
        self.tasks = tasks


class AirflowTaskTimeout(BaseException):
    """A task ran past its execution_timeout (a BaseException, as in Airflow: `except Exception` in
    task code does not swallow it)."""
