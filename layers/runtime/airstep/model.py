"""The graph model: a declarative, JSON-serialisable description of one DAG.

`DagModel.from_dag` produces it from the DAG objects a DAG file defines (only ever where user code may
run: the parse sandbox, the executor, a local command). The compiler turns it into a state machine,
and the task runner reads it (stored beside the machine, `storage_key`) to know each task's upstreams,
trigger rule and policy without running user code. `DagModel.from_json(m.to_json()) == m` for every
model (tests prove it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airstep.containers import ContainerPolicy
from airstep.contract import DEFAULT_POOL, DEFAULT_QUEUE, Schedule
from airstep.integration import Integration
from airstep.states import RunState, TaskState
from airstep.trigger_rule import SKIPPED_WHEN_ALL_UPSTREAMS_SKIPPED, TriggerRule

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.dag import DAG
    from airstep.sdk.deadline import DeadlineAlert

FORMAT_VERSION = 2  # 2: no operator kind or spec, typed schedule
DAG_CALLBACKS = ("on_success_callback", "on_failure_callback")
# The task callback Airflow runs for each outcome of a try (the model keeps which a task has)
OUTCOME_CALLBACK = {
    TaskState.SUCCESS: "on_success_callback",
    TaskState.FAILED: "on_failure_callback",
    TaskState.UP_FOR_RETRY: "on_retry_callback",
    TaskState.SKIPPED: "on_skipped_callback",
}
EARLY_RULES = frozenset({TriggerRule.ONE_SUCCESS, TriggerRule.ONE_FAILED, TriggerRule.ONE_DONE, TriggerRule.ALWAYS})


@dataclass(frozen=True, slots=True)
class SensorPolicy:
    """How a sensor waits (Airflow's BaseSensorOperator arguments, in seconds): the task runner
    and the compiler read them, never the sensor's code."""

    poke_interval: float = 60.0
    timeout: float = 7 * 24 * 3600.0
    soft_fail: bool = False
    mode: str = "poke"
    exponential_backoff: bool = False
    max_wait: float | None = None
    # An ExternalTaskSensor: the other DAG whose run (at this run's logical date minus the delta) and
    # tasks it reads; the task runner reads their states from the records for each poke.
    external_dag_id: str | None = None
    external_task_ids: tuple[str, ...] = ()
    external_delta: float = 0.0
    # A time sensor: its first poke that is not done names its moment, and one Wait lasts until it.
    waits_for_moment: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["external_task_ids"] = list(self.external_task_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SensorPolicy:
        return cls(**{**data, "external_task_ids": tuple(data.get("external_task_ids", ()))})


@dataclass(frozen=True, slots=True)
class TriggerPolicy:
    """A TriggerDagRunOperator: the task runner starts the run its try asks for and, when the task
    waits for it, reads its state for each poke (the task's sensor policy says how often)."""

    allowed_states: tuple[str, ...] = (RunState.SUCCESS.value,)
    failed_states: tuple[str, ...] = (RunState.FAILED.value,)

    def to_dict(self) -> dict[str, Any]:
        return {"allowed_states": list(self.allowed_states), "failed_states": list(self.failed_states)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TriggerPolicy:
        return cls(tuple(data["allowed_states"]), tuple(data["failed_states"]))


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """One of a DAG's deadline alerts: what it counts from (`reference`: queued_at, logical_date,
    fixed_datetime at `fixed` (ISO), or average_runtime over `max_runs`, needing `min_runs`), its
    interval in seconds, and its callback (a dotted path: the executor calls it from the DAG file's
    alert, `asynchronous` awaited)."""

    reference: str
    interval: float
    callback: str
    asynchronous: bool = False
    name: str | None = None
    fixed: str | None = None
    max_runs: int = 0
    min_runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeadlinePolicy:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class TaskModel:
    """One task: identity, edges (upstream ids, sorted), retry/timeout policy and trigger rule."""

    task_id: str
    upstream: tuple[str, ...]
    line: int
    owner: str = "airflow"
    retries: int = 0
    retry_delay: float = 300.0
    retry_exponential_backoff: float = 0.0
    max_retry_delay: float | None = None
    execution_timeout: float | None = None
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    queue: str = DEFAULT_QUEUE  # which executor function runs the task (Airflow's worker queue)
    task_group: str | None = None  # the innermost task group holding the task
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False  # a teardown that fails the run when it fails
    display_name: str | None = None  # task_display_name, when it differs from the id
    skips_downstream: bool = False  # a branch or short circuit (Airflow's SkipMixin)
    mapped: bool = False  # runs as instances by map index (.expand, or in a mapped task group)
    map_group: str | None = None  # the mapped task group whose expansion gives its instances
    max_active_tis_per_dagrun: int | None = None
    pool: str | None = None  # a pool that limits it (None: Airflow's default_pool, unlimited here)
    pool_slots: int = 1
    sensor: SensorPolicy | None = None  # a sensor: pokes until done, waiting between pokes
    outlets: tuple[tuple[str, str], ...] = ()  # the assets (name, uri) its success updates
    trigger: TriggerPolicy | None = None  # a TriggerDagRunOperator
    # the callbacks it has for an outcome the task runner decides (a trigger's, a sensor's timeout)
    callbacks: tuple[str, ...] = ()
    integration: Integration | None = None  # an AWS operator run as a service integration (no task code)
    container: ContainerPolicy | None = None  # its tries run in ECS Fargate (the ECS executor), not Lambda
    pulls: tuple[str, ...] = ()  # ancestors, not upstream, its xcom_pull calls name (airstep.sdk.pulls)

    @property
    def calls_service(self) -> bool:
        """Whether its try is a Step Functions service call between two runner steps: an AWS
        operator's integration, or a container try (the ECS executor)."""
        return self.integration is not None or self.container is not None

    @classmethod
    def from_operator(cls, op: BaseOperator) -> TaskModel:
        from airstep.sdk.operators.branch import SkipMixin
        from airstep.sdk.operators.trigger_dagrun import DEFAULT_WAIT_TIMEOUT, TriggerDagRunOperator
        from airstep.sdk.sensors import BaseSensorOperator
        from airstep.sdk.taskgroup import mapped_group_of

        map_group = mapped_group_of(op.task_group)
        integration = op.integration()
        sensor = None
        if isinstance(op, BaseSensorOperator) and integration is None:  # (an AWS sensor's pokes are describe calls)
            sensor = SensorPolicy(
                op.poke_interval,
                op.timeout,
                op.soft_fail,
                op.mode,
                op.exponential_backoff,
                op.max_wait,
                *op.external_lookup(),
                waits_for_moment=op.waits_for_moment,
            )
        trigger, execution_timeout = None, op.execution_timeout
        if isinstance(op, TriggerDagRunOperator):
            trigger = TriggerPolicy(tuple(op.allowed_states), tuple(op.failed_states))
            if op.waits:  # a poke-mode sensor (running, as Airflow's wait) whose limit is the whole wait
                sensor = SensorPolicy(float(op.poke_interval), execution_timeout or DEFAULT_WAIT_TIMEOUT)
                execution_timeout = None
        return cls(
            task_id=op.task_id,
            upstream=tuple(sorted(op.upstream_task_ids)),
            line=op.location.line,
            owner=op.owner,
            retries=op.retries,
            retry_delay=op.retry_delay,
            retry_exponential_backoff=op.retry_exponential_backoff,
            max_retry_delay=op.max_retry_delay,
            execution_timeout=execution_timeout,
            trigger_rule=op.trigger_rule,
            queue=op.queue,
            task_group=op.task_group.group_id if op.task_group else None,
            is_setup=op.is_setup,
            is_teardown=op.is_teardown,
            on_failure_fail_dagrun=op.on_failure_fail_dagrun,
            display_name=op.task_display_name if op.task_display_name != op.task_id else None,
            skips_downstream=isinstance(op, SkipMixin),
            mapped=op.expand_input is not None or map_group is not None,
            map_group=map_group.group_id if map_group else None,
            max_active_tis_per_dagrun=op.max_active_tis_per_dagrun,
            pool=None if op.pool == DEFAULT_POOL else op.pool,
            pool_slots=op.pool_slots if op.pool != DEFAULT_POOL else 1,
            sensor=sensor,
            outlets=tuple((asset.name, asset.uri) for asset in op.outlets),
            trigger=trigger,
            callbacks=tuple(name for name in OUTCOME_CALLBACK.values() if getattr(op, name)),
            integration=integration,
            container=op.container,
        )

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["upstream"] = list(self.upstream)
        data["sensor"] = self.sensor.to_dict() if self.sensor else None
        data["outlets"] = [list(asset) for asset in self.outlets]
        if not self.outlets:  # most tasks: kept out of the model's JSON
            del data["outlets"]
        data["trigger"] = self.trigger.to_dict() if self.trigger else None
        data["callbacks"] = list(self.callbacks)
        data["pulls"] = list(self.pulls)
        data["integration"] = self.integration.to_dict() if self.integration else None
        data["container"] = self.container.to_dict() if self.container else None
        for name in ("trigger", "callbacks", "integration", "container", "pulls"):  # most tasks: kept out of the JSON
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskModel:
        sensor = SensorPolicy.from_dict(data["sensor"]) if data.get("sensor") else None
        return cls(
            **{
                **data,
                "upstream": tuple(data["upstream"]),
                "trigger_rule": TriggerRule(data["trigger_rule"]),
                "sensor": sensor,
                "outlets": tuple(tuple(asset) for asset in data.get("outlets", ())),
                "trigger": TriggerPolicy.from_dict(data["trigger"]) if data.get("trigger") else None,
                "callbacks": tuple(data.get("callbacks", ())),
                "pulls": tuple(data.get("pulls", ())),
                "integration": Integration.from_dict(data["integration"]) if data.get("integration") else None,
                "container": ContainerPolicy.from_dict(data["container"]) if data.get("container") else None,
            }
        )


@dataclass(frozen=True)
class DagModel:
    """One DAG: its tasks in definition order, schedule and run-level settings. The indexes below
    are computed once per model (the task runner reads them on every invocation; a DAG may have
    thousands of tasks)."""

    dag_id: str
    file: str
    line: int
    tasks: tuple[TaskModel, ...]
    schedule: Schedule | None = None
    timezone: str = "UTC"
    start_date: str | None = None
    end_date: str | None = None
    catchup: bool = False
    max_active_runs: int = 16  # runs of the DAG active at once (more wait, queued)
    max_active_tasks: int | None = None  # task instances of a run running at once (more wait for a slot)
    is_paused_upon_creation: bool | None = None  # None: the environment's DagsArePausedAtCreation
    dagrun_timeout: float | None = None  # seconds: a run still going then fails (its unfinished tasks skipped)
    tags: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # default values
    param_schemas: tuple[tuple[str, dict[str, Any]], ...] = ()  # (name, JSON schema) of every param, in order
    description: str | None = None
    doc_md: str | None = None
    display_name: str | None = None  # dag_display_name, when it differs from the id
    callbacks: tuple[str, ...] = ()  # the DAG's run callbacks ("on_success_callback", ...), if any
    edge_labels: tuple[tuple[str, str, str], ...] = ()  # (upstream, downstream, label), sorted
    task_groups: tuple[tuple[str, str | None, str], ...] = ()  # (group_id, parent group_id, tooltip)
    deadlines: tuple[DeadlinePolicy, ...] = ()  # its deadline alerts, in the order the DAG lists them
    format: int = FORMAT_VERSION

    @classmethod
    def from_dag(cls, dag: DAG) -> DagModel:
        model = cls(
            dag_id=dag.dag_id,
            file=dag.location.file,
            line=dag.location.line,
            tasks=tuple(TaskModel.from_operator(op) for op in dag.tasks),
            schedule=dag.schedule,
            timezone=dag.schedule_timezone,
            start_date=_iso(dag.start_date),
            end_date=_iso(dag.end_date),
            catchup=dag.catchup,
            max_active_runs=dag.max_active_runs,
            max_active_tasks=dag.max_active_tasks,
            is_paused_upon_creation=dag.is_paused_upon_creation,
            dagrun_timeout=dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
            tags=tuple(dag.tags),
            params=dict(dag.params),
            param_schemas=tuple(dag.param_schemas.items()),
            description=dag.description,
            doc_md=dag.doc_md,
            display_name=dag.dag_display_name if dag.dag_display_name != dag.dag_id else None,
            callbacks=tuple(name for name in DAG_CALLBACKS if getattr(dag, name)),
            edge_labels=tuple(sorted((up, down, label) for (up, down), label in dag.edge_labels.items())),
            task_groups=tuple(
                (g.group_id, g.parent_group.group_id if g.parent_group else None, g.tooltip)
                for g in dag.task_groups.values()
            ),
            deadlines=tuple(_deadline_policy(alert) for alert in dag.deadline),
        )
        return _with_pulls(model, dag)

    @cached_property
    def task_map(self) -> dict[str, TaskModel]:
        return {t.task_id: t for t in self.tasks}

    @cached_property
    def map_groups(self) -> dict[str, tuple[str, ...]]:
        """Each mapped task group's tasks, in definition order."""
        groups: dict[str, list[str]] = {}
        for t in self.tasks:
            if t.map_group is not None:
                groups.setdefault(t.map_group, []).append(t.task_id)
        return {group: tuple(members) for group, members in groups.items()}

    @cached_property
    def _downstream(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {t.task_id: [] for t in self.tasks}
        for t in self.tasks:
            for up in t.upstream:
                result[up].append(t.task_id)
        return result

    def downstream(self) -> dict[str, list[str]]:
        """task_id -> downstream task ids, in definition order (shared: do not modify)."""
        return self._downstream

    @cached_property
    def has_setups(self) -> bool:
        return any(t.is_setup for t in self.tasks)

    @cached_property
    def early_tasks(self) -> frozenset[str]:
        """Tasks that start as soon as their trigger rule is decided, as Airflow starts them, rather
        than once every upstream has ended: `always` tasks with upstreams, and `one_success`,
        `one_failed` and `one_done` tasks with several (one upstream decides only when it ends).
        Not in a DAG with setup tasks: a task there must not end before the setups and work that its
        teardowns wait for; nor for a mapped task or one downstream of a mapped task."""
        if self.has_setups:
            return frozenset()
        tasks = self.task_map
        return frozenset(
            t.task_id
            for t in self.tasks
            if t.trigger_rule in EARLY_RULES
            and len(t.upstream) >= (1 if t.trigger_rule is TriggerRule.ALWAYS else 2)
            and not t.mapped
            and not any(tasks[u].mapped for u in t.upstream)
        )

    def certain_skips(self, skipped: Iterable[str]) -> frozenset[str]:
        """`skipped` and every task that their skips settle as skipped whatever else happens in the
        run: a task all of whose upstreams are in the set, with a rule that skips it then. Empty in a
        DAG with setup tasks (Airflow's setup constraint decides there first); never a task of a
        mapped task group (each instance decides it), nor anything downstream of one."""
        if self.has_setups:
            return frozenset()
        found = set(skipped)
        tasks, downstream = self.task_map, self._downstream
        frontier = list(found)
        while frontier:
            for candidate in downstream[frontier.pop()]:
                task = tasks[candidate]
                if (
                    candidate not in found
                    and task.map_group is None
                    and task.trigger_rule in SKIPPED_WHEN_ALL_UPSTREAMS_SKIPPED
                    and all(u in found for u in task.upstream)
                ):
                    found.add(candidate)
                    frontier.append(candidate)
        return frozenset(found)

    def resolve_params(self, conf: dict[str, Any]) -> dict[str, Any]:
        """The params a run with `conf` gets, validated as Airflow does when it creates the run
        (airstep.sdk.param); ParamValidationError names the first invalid one."""
        from airstep.sdk.param import resolve_params

        return resolve_params(self.params, dict(self.param_schemas), conf)

    def relatives(self, task_id: str, upstream: bool) -> set[str]:
        """Every task reachable downstream (or upstream) of `task_id`."""
        edges = self._upstream if upstream else self._downstream
        found: set[str] = set()
        frontier = [task_id]
        while frontier:
            for relative in edges[frontier.pop()]:
                if relative not in found:
                    found.add(relative)
                    frontier.append(relative)
        return found

    @cached_property
    def _upstream(self) -> dict[str, tuple[str, ...]]:
        return {t.task_id: t.upstream for t in self.tasks}

    def relevant_setups(self, task_id: str) -> list[str]:
        """Airflow's `get_upstreams_only_setups`: the setups upstream of a task that have no teardown,
        or a teardown downstream of the task (sorted; none for a teardown)."""
        return self._relevant_setups.get(task_id, [])

    @cached_property
    def _relevant_setups(self) -> dict[str, list[str]]:
        """Per task, its relevant setups: once per model, one walk per setup and per teardown."""
        found: dict[str, list[str]] = {}
        tasks = self.task_map
        for setup in sorted(t.task_id for t in self.tasks if t.is_setup):
            teardowns = [d for d in self._downstream[setup] if tasks[d].is_teardown]
            if teardowns:  # relevant to the tasks upstream of one of its teardowns
                scope = set().union(*(self.relatives(t, upstream=True) for t in teardowns))
                scope &= self.relatives(setup, upstream=False)
            else:
                scope = self.relatives(setup, upstream=False)
            for task_id in scope:
                if not tasks[task_id].is_teardown:
                    found.setdefault(task_id, []).append(setup)
        return found

    def run_state_leaves(self) -> list[str]:
        """The tasks whose states decide the run's (Airflow's `_tis_for_dagrun_state`): leaves, where
        a teardown counts only with on_failure_fail_dagrun, and a task followed only by such ignored
        teardowns counts as a leaf."""
        tasks, downstream = self.task_map, self.downstream()

        def counted(task: TaskModel) -> bool:
            return not task.is_teardown or task.on_failure_fail_dagrun

        leaves = [
            t.task_id for t in self.tasks if counted(t) and not any(counted(tasks[d]) for d in downstream[t.task_id])
        ]
        return leaves or [t for t, down in downstream.items() if not down]

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["tasks"] = [t.to_dict() for t in self.tasks]
        data["tags"] = list(self.tags)
        data["edge_labels"] = [list(edge) for edge in self.edge_labels]
        data["task_groups"] = [list(group) for group in self.task_groups]
        data["param_schemas"] = [list(param) for param in self.param_schemas]
        data["callbacks"] = list(self.callbacks)
        data["schedule"] = self.schedule.to_dict() if self.schedule else None
        data["deadlines"] = [d.to_dict() for d in self.deadlines]
        if not self.deadlines:  # (models from before deadlines, and their content addresses, unchanged)
            del data["deadlines"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DagModel:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported graph model format {data.get('format')!r} (expected {FORMAT_VERSION})")
        return cls(
            **{
                **data,
                "tasks": tuple(TaskModel.from_dict(t) for t in data["tasks"]),
                "tags": tuple(data["tags"]),
                "edge_labels": tuple(tuple(edge) for edge in data.get("edge_labels", ())),  # added within format 2
                "task_groups": tuple(tuple(group) for group in data.get("task_groups", ())),
                "param_schemas": tuple(tuple(param) for param in data.get("param_schemas", ())),
                "callbacks": tuple(data.get("callbacks", ())),
                "schedule": Schedule.from_dict(data["schedule"]) if data["schedule"] else None,
                "deadlines": tuple(DeadlinePolicy.from_dict(d) for d in data.get("deadlines", ())),
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def storage_key(self) -> str:
        """Where this exact model is stored: content-addressed, so storing it again changes nothing."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:20]
        return f"models/{self.dag_id}/{digest}.json"

    @classmethod
    def from_json(cls, text: str) -> DagModel:
        return cls.from_dict(json.loads(text))


def _deadline_policy(alert: DeadlineAlert) -> DeadlinePolicy:
    from airstep.loader import DAG_MODULE_PREFIX

    reference = alert.reference.to_dict()
    fixed = reference.get("datetime")
    path = alert.callback.path  # one of the DAG file's own: its name (the file's module is named by its path)
    return DeadlinePolicy(
        reference=reference["kind"],
        interval=alert.interval.total_seconds(),
        callback=path.split(".", 1)[1] if path.startswith(DAG_MODULE_PREFIX) else path,
        asynchronous=alert.callback.asynchronous,
        name=alert.name,
        fixed=datetime.fromtimestamp(fixed, UTC).isoformat() if fixed is not None else None,
        max_runs=reference.get("max_runs", 0),
        min_runs=reference.get("min_runs", 0) or 0,
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _with_pulls(model: DagModel, dag: DAG) -> DagModel:
    """The model with each task's pulls: the ancestors its xcom_pull calls name that are not its
    upstream (outside its mapped task group: there a pull reads the instance at its own map index)."""
    from airstep.sdk.pulls import pulled_task_ids

    tasks = model.task_map
    pulling = {}
    for op in dag.tasks:
        task = tasks[op.task_id]
        wanted = pulled_task_ids(op) - set(task.upstream) - {task.task_id}
        if wanted:
            found = tuple(
                t
                for t in sorted(wanted & model.relatives(task.task_id, upstream=True))
                if task.map_group is None or tasks[t].map_group != task.map_group
            )
            if found:
                pulling[task.task_id] = replace(task, pulls=found)
    if not pulling:
        return model
    return replace(model, tasks=tuple(pulling.get(t.task_id, t) for t in model.tasks))
