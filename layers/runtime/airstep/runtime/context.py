"""The run context a task sees: Airflow's context keys, built from the execution input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airstep.runtime.store import MetadataStore, RunKey
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.dag import DAG


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run as the execution input describes it (see airstep_cli.local.engine.run_input); it is
    also what tasks see as `context["dag_run"]`."""

    dag_id: str
    run_id: str
    run_type: str
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: dict[str, Any]

    @classmethod
    def from_input(cls, data: dict[str, Any]) -> RunInfo:
        return cls(
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            run_type=data.get("run_type", "manual"),
            logical_date=parse_time(data.get("logical_date")),
            data_interval_start=parse_time(data.get("data_interval_start")),
            data_interval_end=parse_time(data.get("data_interval_end")),
            conf=dict(data.get("conf") or {}),
        )


class TaskInstanceView:
    """What `context["ti"]` offers: identity, try number and xcom_pull."""

    def __init__(self, store: MetadataStore, run: RunKey, task_id: str, try_number: int, map_index: int = -1) -> None:
        self._store = store
        self._run = run
        self.dag_id = run.dag_id
        self.run_id = run.run_id
        self.task_id = task_id
        self.try_number = try_number
        self.map_index = map_index

    def xcom_pull(self, task_ids: str | list[str] | None = None, key: str = "return_value") -> Any:
        if key != "return_value":
            raise NotImplementedError("airstep stores return values only (key='return_value')")
        if task_ids is None:
            raise ValueError("xcom_pull needs task_ids")
        ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        values = self._store.get_xcoms(self._run, ids)
        pulled = [values.get(t) for t in ids]
        return pulled[0] if isinstance(task_ids, str) else pulled


def build_context(dag: DAG, task: BaseOperator, run: RunInfo, ti: TaskInstanceView) -> dict[str, Any]:
    """Airflow's template context, for the keys airstep supports."""
    logical = run.logical_date
    params = {**dag.params, **run.conf}  # [core] dag_run_conf_overrides_params = True
    context: dict[str, Any] = {
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
