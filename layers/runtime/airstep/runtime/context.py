"""The run context a task sees: Airflow's context keys, built from the run and the task instance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from airstep.contract import DagRun

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.dag import DAG


# Airflow's `Context` (a TypedDict there): what `get_current_context()` returns and `**context` receives.
Context = dict[str, Any]

_current: ContextVar[Context | None] = ContextVar("airstep_task_context", default=None)


def get_current_context() -> Context:
    """The running task's context, as Airflow's `get_current_context()` gives it."""
    context = _current.get()
    if context is None:
        raise RuntimeError(
            "get_current_context() has no context: call it while a task runs (in its code), not at DAG parse time"
        )
    return context


@contextmanager
def current_context(context: Context) -> Iterator[None]:
    """Make `context` what `get_current_context()` returns while the task's code runs."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


class TaskInstanceView:
    """What `context["ti"]` offers: identity, try number and xcom_pull.

    A try is given the return values of its upstream tasks (`upstream`: JSON text, or None for a task
    that returned nothing); those are what `xcom_pull` can pull. Task code never reads run records."""

    def __init__(self, run: DagRun, task_id: str, try_number: int, upstream: dict[str, str | None]) -> None:
        self._upstream = upstream
        self.dag_id = run.dag_id
        self.run_id = run.run_id
        self.task_id = task_id
        self.try_number = try_number
        self.map_index = -1

    def xcom_pull(self, task_ids: str | list[str] | None = None, key: str = "return_value") -> Any:
        if key != "return_value":
            raise NotImplementedError("airstep stores return values only (key='return_value')")
        if task_ids is None:
            raise ValueError("xcom_pull needs task_ids")
        ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        unknown = [t for t in ids if t not in self._upstream]
        if unknown:
            raise ValueError(
                f"xcom_pull({', '.join(map(repr, unknown))}): task {self.task_id!r} can pull the return values "
                f"of its upstream tasks only ({', '.join(sorted(self._upstream)) or 'it has none'}); "
                "make the task an upstream of this one"
            )
        pulled = [None if self._upstream[t] is None else json.loads(self._upstream[t]) for t in ids]
        return pulled[0] if isinstance(task_ids, str) else pulled


def build_context(dag: DAG, task: BaseOperator, run: DagRun, ti: TaskInstanceView) -> Context:
    """Airflow's template context, for the keys airstep supports."""
    logical = run.logical_date
    params = {**dag.params, **run.conf}  # [core] dag_run_conf_overrides_params = True
    context: Context = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "run_id": run.run_id,
        "dag_run": run,
        "params": params,
        "logical_date": logical,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
    }
    if logical is not None:
        context.update(
            ds=logical.strftime("%Y-%m-%d"),
            ds_nodash=logical.strftime("%Y%m%d"),
            ts=logical.isoformat(),
            ts_nodash=logical.strftime("%Y%m%dT%H%M%S"),
        )
    return context
