"""Deadline alerts, with Airflow 3.3's API: `DAG(deadline=DeadlineAlert(reference, interval, callback))`.

A run's deadline is its reference time plus `interval`; when it passes and the run has not ended by
then, the alert's callback is called once with its kwargs and a context of the run and the deadline.
Where the deadline is armed and how it fires is airstep.runtime.deadline_alerts'.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airstep.errors import DagDefinitionError, SourceLocation


class BaseDeadlineReference:
    """What a deadline is counted from (Airflow's BaseDeadlineReference)."""

    kind = ""

    @property
    def reference_name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BaseDeadlineReference) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_dict().items())))


class DagRunLogicalDateDeadline(BaseDeadlineReference):
    """The run's logical date (a run without one has no deadline)."""

    kind = "logical_date"


class DagRunQueuedAtDeadline(BaseDeadlineReference):
    """When the run was queued."""

    kind = "queued_at"


@dataclass(eq=False)
class FixedDatetimeDeadline(BaseDeadlineReference):
    """A fixed moment."""

    _datetime: datetime
    kind = "fixed_datetime"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "datetime": self._datetime.timestamp()}


@dataclass(eq=False)
class AverageRuntimeDeadline(BaseDeadlineReference):
    """When the run was created plus the average duration of the DAG's last `max_runs` successful runs
    (no deadline while it has fewer than `min_runs`)."""

    max_runs: int
    min_runs: int | None = None
    kind = "average_runtime"
    DEFAULT_LIMIT = 10

    def __post_init__(self) -> None:
        if self.min_runs is None:
            self.min_runs = self.max_runs
        if self.min_runs < 1:
            raise ValueError("min_runs must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_runs": self.max_runs, "min_runs": self.min_runs}


class DeadlineReference:
    """The deadline references, as Airflow names them."""

    DAGRUN_LOGICAL_DATE: BaseDeadlineReference = DagRunLogicalDateDeadline()
    DAGRUN_QUEUED_AT: BaseDeadlineReference = DagRunQueuedAtDeadline()

    @classmethod
    def AVERAGE_RUNTIME(cls, max_runs: int = 0, min_runs: int | None = None) -> BaseDeadlineReference:  # noqa: N802
        max_runs = max_runs or AverageRuntimeDeadline.DEFAULT_LIMIT
        return AverageRuntimeDeadline(max_runs, max_runs if min_runs is None else min_runs)

    @classmethod
    def FIXED_DATETIME(cls, dt: datetime) -> BaseDeadlineReference:  # noqa: N802
        return FixedDatetimeDeadline(dt)


class Callback:
    """What a missed deadline calls: a top-level callable (or its dotted path) with `kwargs`, and
    `context` if it takes one."""

    asynchronous = False

    def __init__(self, callback_callable: Callable[..., Any] | str, kwargs: dict[str, Any] | None = None) -> None:
        if kwargs and "context" in kwargs:
            raise ValueError("context is a reserved kwarg for this class")
        if callable(callback_callable):
            self.verify_callable(callback_callable)
            self.callable: Callable[..., Any] | None = callback_callable
            self.path = f"{callback_callable.__module__}.{callback_callable.__qualname__}"
        elif isinstance(callback_callable, str) and callback_callable.strip():
            self.callable, self.path = None, callback_callable.strip()
        else:
            raise ImportError(f"`{callback_callable}` doesn't look like a valid dot path.")
        self.kwargs = dict(kwargs or {})

    @classmethod
    def verify_callable(cls, callback: Callable[..., Any]) -> None:
        """Nothing to check for a synchronous callback."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and (self.path, self.kwargs) == (other.path, other.kwargs)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.path))


class AsyncCallback(Callback):
    """A coroutine function called when the deadline is missed (Airflow runs it in its triggerer)."""

    asynchronous = True

    @classmethod
    def verify_callable(cls, callback: Callable[..., Any]) -> None:
        if not (inspect.iscoroutinefunction(callback) or hasattr(callback, "__await__")):
            raise AttributeError(f"Provided callback {callback} is not awaitable.")


class SyncCallback(Callback):
    """A function called when the deadline is missed (Airflow runs it on `executor`; airstep on the
    DAG's executor function)."""

    def __init__(
        self,
        callback_callable: Callable[..., Any] | str,
        kwargs: dict[str, Any] | None = None,
        executor: str | None = None,
    ) -> None:
        super().__init__(callback_callable, kwargs)
        self.executor = executor


@dataclass(frozen=True, slots=True)
class DeadlineAlert:
    """A deadline of each run of the DAG: `reference` plus `interval`, and the callback of a miss."""

    reference: BaseDeadlineReference
    interval: timedelta
    callback: Callback
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.callback, (AsyncCallback, SyncCallback)):
            raise ValueError(f"Callbacks of type {type(self.callback).__name__} are not currently supported")


def deadline_alerts(value: Any, location: SourceLocation) -> tuple[DeadlineAlert, ...]:
    """A DAG's `deadline` argument (one alert or a list) checked: what airstep can arm."""
    alerts = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
    for alert in alerts:
        if not isinstance(alert, DeadlineAlert):
            raise DagDefinitionError(f"deadline must be a DeadlineAlert or a list of them, got {alert!r}", location)
        if not isinstance(alert.interval, timedelta):
            kind = type(alert.interval).__name__
            message = f"deadline interval must be a timedelta (airstep does not resolve a {kind} yet)"
            raise DagDefinitionError(message, location)
        if not isinstance(alert.reference, BaseDeadlineReference) or not alert.reference.kind:
            message = f"deadline reference {alert.reference!r} is not one airstep knows: use DeadlineReference's"
            raise DagDefinitionError(message, location)
    return tuple(alerts)
