"""The run context a task sees: Airflow's context keys, built from the run and the task instance."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airstep.connections import AirflowNotFoundException, Connection, Variable
from airstep.contract import XCOM_RETURN_KEY, DagRun
from airstep.runtime import macros
from airstep.runtime.xcoms import decode_xcoms
from airstep.sdk.assets import TriggeringAssetEvents
from airstep.sdk.param import NOTSET as _NOTSET
from airstep.sdk.param import resolve_params

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


@dataclass(frozen=True, slots=True)
class ExternalStates:
    """Another DAG's run and tasks as the task runner read them for an ExternalTaskSensor's poke:
    the run at `logical_date` (`run_state` None: no such run yet) and the states of each task's
    instances (one for an unmapped task, each map index's for a mapped one; none before it has one)."""

    dag_id: str
    logical_date: str
    run_state: str | None
    task_states: dict[str, list[str | None]]

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExternalStates:
        return cls(data["dag_id"], data["logical_date"], data["run_state"], dict(data["task_states"]))

    def answers(self, dag_id: str, logical_dates: Iterable[Any] | None) -> None:
        asked = [d.isoformat() if hasattr(d, "isoformat") else str(d) for d in logical_dates or ()]
        if dag_id != self.dag_id or asked != [self.logical_date]:
            raise RuntimeError(
                f"airstep answers this only for what the sensor reads: DAG {self.dag_id!r} at {self.logical_date} "
                f"(asked: {dag_id!r} at {asked})"
            )


class TaskInstanceView:
    """What `context["ti"]` offers: identity, try number, xcom_push and xcom_pull.

    A try is given the XComs of its upstream tasks (`upstream`: {key: value} as JSON text, or None for
    a task that pushed none); those, and what this try pushed, are what `xcom_pull` can pull. Task
    code never reads run records."""

    def __init__(self, run: DagRun, task_id: str, try_number: int, upstream: dict[str, Any]) -> None:
        self._upstream = upstream
        self._pulled: dict[str, Any] = {}  # decoded (a large value read once); a list for a mapped task
        self.pushed: dict[str, Any] = {}
        self.dag_id = run.dag_id
        self.run_id = run.run_id
        self.task_id = task_id
        self.try_number = try_number
        self.max_tries = 0  # Airflow's: the try number past which a failure is final
        self.map_index = -1
        self.skipped: list[str] = []  # the downstream tasks a mapped instance's branch skipped
        # Tasks of a mapped task group pulled as a whole, by an argument too: as Airflow 3.3's
        # xcom_pull (which an explicit pull of any mapped task is), one value alone when only one
        # instance pushed one (None when none did), else the list.
        self.pulled_alone: frozenset[str] = frozenset()
        self.external: ExternalStates | None = None  # an ExternalTaskSensor's: read by the task runner

    def get_dr_count(
        self, dag_id: str, logical_dates: Iterable[Any] | None = None, run_ids: Any = None, states: Any = None
    ) -> int:
        """Airflow's count of `dag_id`'s runs at `logical_dates` in `states` (an ExternalTaskSensor's)."""
        external = self._external()
        external.answers(dag_id, logical_dates)
        return int(external.run_state is not None and (states is None or external.run_state in states))

    def get_ti_count(
        self,
        dag_id: str,
        map_index: int | None = None,
        task_ids: Iterable[str] | None = None,
        task_group_id: str | None = None,
        logical_dates: Iterable[Any] | None = None,
        run_ids: Any = None,
        states: Any = None,
    ) -> int:
        """Airflow's count of `dag_id`'s task instances of `task_ids` at `logical_dates` in `states`
        (each instance of a mapped task counts, as in Airflow)."""
        external = self._external()
        external.answers(dag_id, logical_dates)
        found = [state for t in task_ids or external.task_states for state in external.task_states.get(t, [])]
        return sum(1 for state in found if state is not None and (states is None or state in states))

    def _external(self) -> ExternalStates:
        if self.external is None:
            raise RuntimeError("only an ExternalTaskSensor's poke reads other runs in airstep")
        return self.external

    def xcom_push(self, key: str, value: Any) -> None:
        """Make `value` (JSON-serialisable, as in Airflow) available to downstream tasks under `key`."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"xcom_push: key must be a non-empty string, got {key!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"xcom_push({key!r}): the value is not JSON-serialisable: {exc}") from None
        self.pushed[key] = value

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str = XCOM_RETURN_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes: Any = _NOTSET,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        """Airflow's `xcom_pull`, for this run's upstream tasks (and this task: `task_ids=None`). One
        task id gives its value (None if it pushed nothing under `key`); a list gives a list."""
        if (dag_id or self.dag_id) != self.dag_id or (run_id or self.run_id) != self.run_id or include_prior_dates:
            raise NotImplementedError("airstep's xcom_pull reads the current run only")
        if map_indexes is not _NOTSET and map_indexes not in (None, -1):
            raise NotImplementedError("airstep's xcom_pull takes no map_indexes: a mapped task's pull gives all")
        single = task_ids is None or isinstance(task_ids, str)
        ids = [task_ids or self.task_id] if single else list(task_ids)  # type: ignore[arg-type, list-item]
        unknown = [t for t in ids if t not in self._upstream and t != self.task_id]
        if unknown:
            raise ValueError(
                f"xcom_pull({', '.join(map(repr, unknown))}): task {self.task_id!r} can pull the XComs "
                f"of its upstream tasks, and of tasks further up that its templates or code name in xcom_pull "
                f"by a literal id ({', '.join(sorted(self._upstream)) or 'it has none'}); "
                "make the task an upstream of this one, or name it so"
            )
        # As Airflow: `default` stands in for a missing XCom only when map_indexes is given.
        missing = default if map_indexes is not _NOTSET else None
        if single:
            value = self._value(ids[0], key, missing)
            alone = ids[0] in self.pulled_alone or map_indexes is _NOTSET  # as Airflow's get_all for one task
            if alone and isinstance(self._upstream.get(ids[0]), list) and len(value) <= 1:
                return value[0] if value else None
            return value
        values: list[Any] = []
        for task_id in ids:  # a mapped task's values join the list one by one, as in Airflow
            value = self._value(task_id, key, missing)
            values.extend(value) if isinstance(self._upstream.get(task_id), list) else values.append(value)
        return values

    def _value(self, task_id: str, key: str, missing: Any) -> Any:
        if task_id == self.task_id:
            return self.pushed.get(key, missing)
        if task_id not in self._pulled:
            stored = self._upstream[task_id]
            self._pulled[task_id] = (
                [decode_xcoms(text) for text in stored] if isinstance(stored, list) else decode_xcoms(stored)
            )
        xcoms = self._pulled[task_id]
        if isinstance(xcoms, list):  # a mapped task: what its instances pushed, in map-index order
            return [pushed[key] for pushed in xcoms if pushed is not None and key in pushed]
        return xcoms.get(key, missing) if xcoms is not None else missing


class _Variables:
    """`{{ var.value.key }}` / `{{ var.json.key }}` and `.get(key, default)`, as in Airflow."""

    def __init__(self, deserialize_json: bool) -> None:
        self._json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return Variable.get(key, deserialize_json=self._json)

    def get(self, key: str, default: Any = None) -> Any:
        return Variable.get(key, default, deserialize_json=self._json)


class _VariableAccess:
    value = _Variables(deserialize_json=False)
    json = _Variables(deserialize_json=True)


class _Connections:
    """`{{ conn.my_db.host }}` and `conn.get(conn_id, default)`, as in Airflow."""

    def __getattr__(self, conn_id: str) -> Any:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return Connection.get(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        try:
            return Connection.get(conn_id)
        except AirflowNotFoundException:
            return default_conn


def build_context(dag: DAG, task: BaseOperator, run: DagRun, ti: TaskInstanceView) -> Context:
    """Airflow's template context, for the keys airstep supports."""
    logical = run.logical_date
    # [core] dag_run_conf_overrides_params = True; validated at every task start, as Airflow does
    # (the run may have been started without airstep's checks: the console, StartExecution).
    params = resolve_params({**dag.params, **task.params}, {**dag.param_schemas, **task.param_schemas}, run.conf)
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
        "macros": macros,
        "var": _VariableAccess(),
        "conn": _Connections(),
        "try_number": ti.try_number,
        "test_mode": False,
        "task_instance_key_str": f"{dag.dag_id}__{task.task_id}__{run.run_id}",  # Airflow's, without a logical date
        "triggering_asset_events": TriggeringAssetEvents(run.triggering_asset_events),
    }
    if logical is not None:
        context.update(
            ds=logical.strftime("%Y-%m-%d"),
            ds_nodash=logical.strftime("%Y%m%d"),
            ts=logical.isoformat(),
            ts_nodash=logical.strftime("%Y%m%dT%H%M%S"),
            ts_nodash_with_tz=logical.isoformat().replace("-", "").replace(":", ""),
            task_instance_key_str=f"{dag.dag_id}__{task.task_id}__{logical.strftime('%Y%m%d')}",
        )
    return context
