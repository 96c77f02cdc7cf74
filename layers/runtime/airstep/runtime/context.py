"""The run context a task sees: Airflow's context keys, built from the run and the task instance."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airstep.contract import DagRun

if TYPE_CHECKING:
    from airstep.runtime.store import MetadataStore, RunKey, TaskInstance
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.dag import DAG


class TaskInstanceView:
    """What `context["ti"]` offers: identity, try number and xcom_pull.

    `upstream` holds the upstream task instances the runner already read (with their values), so
    pulling an upstream's value costs no second read."""

    def __init__(
        self,
        store: MetadataStore,
        run: RunKey,
        task_id: str,
        try_number: int,
        upstream: dict[str, TaskInstance] | None = None,
        map_index: int = -1,
    ) -> None:
        self._store = store
        self._run = run
        self._upstream = upstream or {}
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
        values = {t: json.loads(ti.xcom) for t in ids if (ti := self._upstream.get(t)) and ti.xcom is not None}
        unread = [t for t in ids if t not in self._upstream]
        if unread:
            values.update(self._store.get_xcoms(self._run, unread))
        pulled = [values.get(t) for t in ids]
        return pulled[0] if isinstance(task_ids, str) else pulled


def build_context(dag: DAG, task: BaseOperator, run: DagRun, ti: TaskInstanceView) -> dict[str, Any]:
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
