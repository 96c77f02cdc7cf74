"""BaseOperator: a task's identity, its dependencies and its retry/timeout policy."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airstep.contract import DEFAULT_POOL, DEFAULT_QUEUE, RUN_POOL_PREFIX
from airstep.errors import DagDefinitionError, SourceLocation, caller_location, collected_refusal
from airstep.sdk.assets import outlet_assets
from airstep.sdk.dag import (
    DAG,
    OPERATOR_DEFAULT_ARGS,
    TASK_CALLBACKS,
    Callback,
    callbacks,
    current_dag,
    validate_key,
)
from airstep.sdk.dependencies import DependencyMixin
from airstep.sdk.executors import container_for
from airstep.sdk.param import split_params
from airstep.sdk.setup_teardown import ScopeManager, mark_teardown
from airstep.sdk.setup_teardown import context as setup_teardown_context
from airstep.sdk.taskgroup import TaskGroup, current_task_group
from airstep.trigger_rule import TriggerRule

if TYPE_CHECKING:
    from airstep.integration import Integration

_UNSET: Any = object()

# Airflow's defaults ([core] default_task_retries, default_task_retry_delay, ...).
_DEFAULTS: dict[str, Any] = {
    "owner": "airflow",
    "retries": 0,
    "retry_delay": timedelta(seconds=300),
    "retry_exponential_backoff": False,
    "max_retry_delay": None,
    "execution_timeout": None,
    "trigger_rule": TriggerRule.ALL_SUCCESS,
    "queue": DEFAULT_QUEUE,
    "pool": DEFAULT_POOL,
    "pool_slots": 1,
    "do_xcom_push": True,
    "executor": None,
    "executor_config": None,
    **dict.fromkeys(TASK_CALLBACKS),
}
# A queue names an executor function (airstep.contract.executor_function).
QUEUE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
POOL_NAME = re.compile(r"[^\x00-\x1f]{1,256}")  # Airflow's pool column: up to 256 characters


TASK_LOGGER = "airflow.task"  # Airflow's: its tasks' loggers are under it, at INFO


class BaseOperator(DependencyMixin):
    """A task in a DAG. Constructing one has no side effect but registering it in its DAG; running
    it is `execute(context)`, as in Airflow. The attributes named in `template_fields` are rendered
    as Jinja templates before each try (airstep.sdk.templater); a string ending in one of
    `template_ext` names a template file."""

    template_fields: tuple[str, ...] = ()
    template_ext: tuple[str, ...] = ()
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False  # a teardown's failure fails the run only when True

    def __init__(
        self,
        *,
        task_id: str,
        dag: DAG | None = None,
        owner: str = _UNSET,
        retries: int = _UNSET,
        retry_delay: timedelta | float = _UNSET,
        retry_exponential_backoff: bool | float = _UNSET,
        max_retry_delay: timedelta | float | None = _UNSET,
        execution_timeout: timedelta | float | None = _UNSET,
        trigger_rule: TriggerRule | str = _UNSET,
        queue: str = _UNSET,
        pool: str = _UNSET,
        pool_slots: int = _UNSET,
        do_xcom_push: bool = _UNSET,
        executor: str | None = _UNSET,
        executor_config: dict[str, Any] | None = _UNSET,
        multiple_outputs: bool = False,
        params: dict[str, Any] | None = None,
        task_group: TaskGroup | None = None,
        doc_md: str | None = None,
        task_display_name: str | None = None,
        max_active_tis_per_dagrun: int | None = None,
        map_index_template: str | None = None,
        outlets: Any = None,
        inlets: Any = None,
        on_execute_callback: Callback | list[Callback] | None = _UNSET,
        on_success_callback: Callback | list[Callback] | None = _UNSET,
        on_failure_callback: Callback | list[Callback] | None = _UNSET,
        on_retry_callback: Callback | list[Callback] | None = _UNSET,
        on_skipped_callback: Callback | list[Callback] | None = _UNSET,
        location: SourceLocation | None = None,
    ) -> None:
        self.location = location or caller_location()
        validate_key("task_id", task_id, self.location)
        owning_dag = dag or (task_group.dag if task_group else None) or current_dag()
        if owning_dag is None:
            raise DagDefinitionError(
                f"task {task_id!r} is not inside a DAG: define it within `with DAG(...)`, "
                "an @dag function, or pass dag=",
                self.location,
            )
        self.dag: DAG = owning_dag
        self.task_group = task_group or current_task_group(owning_dag)
        self.task_id = self.task_group.child_id(task_id) if self.task_group else task_id
        validate_key("task_id", self.task_id, self.location)
        self.doc_md = doc_md
        self.task_display_name: str = task_display_name or self.task_id
        self.outlets = outlet_assets(outlets, self.location)  # updated when the task succeeds
        self.inlets = list(inlets) if isinstance(inlets, (list, tuple)) else [] if inlets is None else [inlets]
        defaults = {**owning_dag.default_args, **(self.task_group.default_args if self.task_group else {})}
        given = {
            "owner": owner,
            "retries": retries,
            "retry_delay": retry_delay,
            "retry_exponential_backoff": retry_exponential_backoff,
            "max_retry_delay": max_retry_delay,
            "execution_timeout": execution_timeout,
            "trigger_rule": trigger_rule,
            "queue": queue,
            "pool": pool,
            "pool_slots": pool_slots,
            "do_xcom_push": do_xcom_push,
            "executor": executor,
            "executor_config": executor_config,
            "on_execute_callback": on_execute_callback,
            "on_success_callback": on_success_callback,
            "on_failure_callback": on_failure_callback,
            "on_retry_callback": on_retry_callback,
            "on_skipped_callback": on_skipped_callback,
        }
        policy = {
            key: value if value is not _UNSET else defaults.get(key, _DEFAULTS[key]) for key, value in given.items()
        }
        self.owner: str = str(policy["owner"])
        self.retries: int = _check_retries(policy["retries"], self.location)
        self.retry_delay: float = _seconds("retry_delay", policy["retry_delay"], self.location)
        self.retry_exponential_backoff: float = _backoff(policy["retry_exponential_backoff"], self.location)
        self.max_retry_delay: float | None = _optional_seconds(
            "max_retry_delay", policy["max_retry_delay"], self.location
        )
        self.execution_timeout: float | None = _optional_seconds(
            "execution_timeout", policy["execution_timeout"], self.location
        )
        self.trigger_rule: TriggerRule = _trigger_rule(policy["trigger_rule"], self.location)
        self.queue: str = _queue(policy["queue"], self.location)
        self.pool: str = _pool(policy["pool"], self.location)
        self.pool_slots: int = _optional_positive("pool_slots", policy["pool_slots"], self.location) or 1
        self.do_xcom_push: bool = _flag("do_xcom_push", policy["do_xcom_push"], self.location)
        self.multiple_outputs: bool = _flag("multiple_outputs", multiple_outputs, self.location)
        self.executor: str | None = policy["executor"]
        self.executor_config: dict[str, Any] | None = policy["executor_config"]
        self.container = container_for(self.executor, self.executor_config, self.location)
        refusal = self.container_refusal() if self.container is not None else None
        if refusal and self.executor is None:  # the setting's default executor: this one runs no task code there
            self.container = None
        elif refusal:
            raise DagDefinitionError(f"task {self.task_id!r}: executor={self.executor!r}: {refusal}", self.location)
        if self.container is not None and self.queue != DEFAULT_QUEUE and self.executor is None:
            self.container = None  # the queue's executor, as the task asks, over the setting's default
        if self.container is not None and self.queue != DEFAULT_QUEUE:
            raise DagDefinitionError(
                f"queue {self.queue!r} names a Lambda executor (and its role); a try on the ECS executor runs in a "
                "container with the environment's container task role: leave queue out",
                self.location,
            )
        for name in TASK_CALLBACKS:  # run by the executor around each try, never changing its outcome
            setattr(self, name, callbacks(name, policy[name], self.location))
        self.params, self.param_schemas = split_params(params, self.location)  # over the DAG's, under conf
        self.expand_input: dict[str, Any] | None = None  # a mapped task's expanded arguments (sdk.mapping)
        self.max_active_tis_per_dagrun = _optional_positive(
            "max_active_tis_per_dagrun", max_active_tis_per_dagrun, self.location
        )
        if map_index_template is not None and not isinstance(map_index_template, str):
            raise DagDefinitionError(
                f"map_index_template must be a string, got {type(map_index_template).__name__}", self.location
            )
        self.map_index_template = map_index_template  # rendered after each try: its instance's name
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self.edge_locations: dict[str, SourceLocation] = {}  # upstream id -> where the edge was set
        owning_dag.add_task(self)
        if self.task_group:
            self.task_group.tasks.append(self)
        if setup_teardown_context.active:
            setup_teardown_context.add_task(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every operator's `__init__`, once the outermost one returns, sets the task downstream of
        each upstream output (XComArg) held in its template fields, as Airflow's metaclass does."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def init_then_link(self: BaseOperator, *args: Any, **kw: Any) -> None:
            outermost = not getattr(self, "_initialising", False)
            self._initialising = True
            try:
                init(self, *args, **_with_operator_defaults(init, kw))
            except DagDefinitionError as exc:
                if outermost and collected_refusal(exc):  # (a report's load: it goes on)
                    return
                raise
            finally:
                if outermost:
                    self._initialising = False
            if outermost:
                try:
                    self._built()
                except DagDefinitionError as exc:
                    if not collected_refusal(exc):
                        raise

        cls.__init__ = init_then_link  # type: ignore[method-assign]

    def _built(self) -> None:
        """What follows the outermost `__init__` of an operator: it is set downstream of each upstream
        output held in its template fields (an operator class may check more here)."""
        self._link_outputs_in([getattr(self, name, None) for name in self.template_fields])

    def container_refusal(self) -> str | None:
        """Why this operator's tries cannot run in an ECS task (the ECS executor), or None."""
        return None

    def __setattr__(self, name: str, value: Any) -> None:
        """A template field set after the operator is built links the upstream outputs it holds too
        (Airflow's `BaseOperator.__setattr__`)."""
        super().__setattr__(name, value)
        if name in self.template_fields and self.__dict__.get("_initialising") is False:
            self._link_outputs_in(value)

    def _link_outputs_in(self, value: Any) -> None:
        """Set this task downstream of each task whose output (XComArg) `value` holds."""
        from airstep.sdk.xcom_arg import iter_xcom_args

        for arg in iter_xcom_args(value):
            self.add_upstream(arg.operator)

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    def integration(self) -> Integration | None:
        """The Step Functions service integration the task compiles to instead of task code (the
        amazon provider's operators: airstep.sdk.operators.amazon), or None: it runs its code."""
        return None

    def render_template(self, content: Any, context: dict[str, Any], jinja_env: Any = None) -> Any:
        """Airflow's `render_template`: `content` rendered in `context` with the DAG's environment."""
        from airstep.sdk.templater import render, template_env

        return render(content, context, jinja_env or template_env(self.dag), self.template_ext)

    def as_setup(self) -> BaseOperator:
        """Mark this task a setup task (Airflow's `as_setup`)."""
        if self.is_teardown:
            raise DagDefinitionError(f"task {self.task_id!r} is a teardown task: it cannot also be a setup task")
        self.is_setup = True
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> BaseOperator:
        """Mark this task a teardown of `setups` (each marked a setup and set upstream of it): it runs
        once its upstreams are done if any of its setups succeeded, whatever its work did."""
        if self.is_setup:
            raise DagDefinitionError(f"task {self.task_id!r} is a setup task: it cannot also be a teardown task")
        mark_teardown([self], setups, on_failure_fail_dagrun)
        return self

    def __enter__(self) -> Any:
        self._scope = ScopeManager(self)
        return self._scope.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._scope.__exit__(*exc)

    @property
    def roots(self) -> list[BaseOperator]:
        return [self]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self]

    def get_direct_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        ids = self.upstream_task_ids if upstream else self.downstream_task_ids
        return [self.dag.task_dict[t] for t in sorted(ids)]

    def get_flat_relative_ids(self, upstream: bool = False) -> set[str]:
        """Every task reachable downstream (or upstream) of this one."""
        found: set[str] = set()
        frontier = [self]
        while frontier:
            for relative in frontier.pop().get_direct_relatives(upstream):
                if relative.task_id not in found:
                    found.add(relative.task_id)
                    frontier.append(relative)
        return found

    def get_flat_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        return [self.dag.task_dict[t] for t in sorted(self.get_flat_relative_ids(upstream))]

    @property
    def output(self) -> Any:
        """The task's return value as a TaskFlow reference (Airflow's `operator.output`)."""
        from airstep.sdk.xcom_arg import XComArg

        return XComArg(self)

    def add_upstream(self, other: BaseOperator) -> None:
        if other.dag is not self.dag:
            raise DagDefinitionError(
                f"cannot make {other.task_id!r} (DAG {other.dag.dag_id!r}) upstream of "
                f"{self.task_id!r} (DAG {self.dag.dag_id!r}): tasks belong to different DAGs",
                caller_location(),
            )
        if other is self:
            raise DagDefinitionError(
                f"DAG {self.dag.dag_id!r} has a cycle: {self.task_id} -> {self.task_id}", caller_location()
            )
        self.upstream_task_ids.add(other.task_id)
        self.edge_locations.setdefault(other.task_id, caller_location())
        other.downstream_task_ids.add(self.task_id)

    @property
    def log(self) -> logging.Logger:
        """Airflow's task logger (`self.log.info(...)`): INFO and above go to the try's log."""
        return logging.getLogger(f"{TASK_LOGGER}.operators.{type(self).__module__}.{type(self).__name__}")

    def execute(self, context: dict[str, Any]) -> Any:
        """Run the task; what it returns becomes its XCom. Operators override this."""
        raise NotImplementedError(f"{type(self).__name__} does not define execute()")

    @classmethod
    def mapping_refusal(cls) -> str | None:
        """Why the operator cannot be a mapped task (`.partial().expand()`), or None."""
        return None

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """Airflow's `Operator.partial(...)`: the arguments every mapped instance shares."""
        return OperatorPartial(cls, kwargs)


class OperatorPartial:
    """A classic operator's shared arguments, waiting for `.expand(...)`."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        self.operator_class = operator_class
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> BaseOperator:
        """One task, mapped over the cross product of `mapped` (lists, dicts or upstream outputs)."""
        from airstep.sdk.mapping import ExpandInput, check_not_both, mapped_placeholder

        location = caller_location()
        check_not_both(self.kwargs, mapped, location)
        placeholders = {name: mapped_placeholder(name, value) for name, value in mapped.items()}
        return self._mapped(placeholders, ExpandInput(arguments=mapped), location)

    def expand_kwargs(self, kwargs: Any) -> BaseOperator:
        """One task per dict of arguments in `kwargs` (a list, or an upstream output)."""
        from airstep.sdk.mapping import ExpandInput, MappedArgument

        location = caller_location()
        first = kwargs[0] if isinstance(kwargs, (list, tuple)) and kwargs and isinstance(kwargs[0], dict) else {}
        placeholders = {k: v for k, v in first.items() if k not in self.kwargs and not isinstance(v, MappedArgument)}
        return self._mapped(placeholders, ExpandInput(kwargs_list=kwargs), location)

    def _mapped(self, placeholders: dict[str, Any], expand_input: Any, location: SourceLocation) -> BaseOperator:
        from airstep.sdk.mapping import MappedArgument, set_expand_input

        refusal = self.operator_class.mapping_refusal()
        if refusal is not None:  # (before its arguments' checks, which a placeholder would fail)
            raise DagDefinitionError(f"task {self.kwargs.get('task_id')!r}: {refusal}", location)

        try:
            operator = self.operator_class(**self.kwargs, **placeholders, location=location)
        except TypeError as exc:  # required arguments that only an upstream's kwargs will give
            missing = re.findall(r"'(\w+)'", str(exc)) if "required keyword-only argument" in str(exc) else []
            if not missing:
                raise DagDefinitionError(f"{self.operator_class.__name__}.partial(): {exc}", location) from None
            later = {name: MappedArgument(f"<mapped argument {name}>") for name in missing}
            operator = self.operator_class(**self.kwargs, **placeholders, **later, location=location)
        set_expand_input(operator, expand_input, location)
        return operator


def _queue(value: Any, location: SourceLocation) -> str:
    if not isinstance(value, str) or not QUEUE_PATTERN.match(value):
        raise DagDefinitionError(
            f"queue must be 1-20 lowercase letters, digits or '-' (it names an executor function), got {value!r}",
            location,
        )
    return value


def _pool(value: Any, location: SourceLocation) -> str:
    if value is None:  # as Airflow: the default pool
        return DEFAULT_POOL
    if not isinstance(value, str) or not POOL_NAME.fullmatch(value):
        raise DagDefinitionError(f"pool must be a name of 1-256 printable characters, got {value!r}", location)
    if value.startswith(RUN_POOL_PREFIX):
        raise DagDefinitionError(f"pool names starting {RUN_POOL_PREFIX!r} are airstep's own, got {value!r}", location)
    return value


def _trigger_rule(value: Any, location: SourceLocation) -> TriggerRule:
    try:
        return TriggerRule(value)
    except ValueError:
        known = ", ".join(rule.value for rule in TriggerRule)
        raise DagDefinitionError(f"unknown trigger_rule {value!r} (known: {known})", location) from None


def _check_retries(value: Any, location: SourceLocation) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DagDefinitionError(f"retries must be a whole number >= 0, got {value!r}", location)
    return value


def _seconds(name: str, value: Any, location: SourceLocation) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise DagDefinitionError(f"{name} must be a timedelta or seconds, got {value!r}", location)
    if seconds < 0:
        raise DagDefinitionError(f"{name} must not be negative, got {value!r}", location)
    return seconds


def _optional_seconds(name: str, value: Any, location: SourceLocation) -> float | None:
    return None if value is None else _seconds(name, value, location)


def _optional_positive(name: str, value: Any, location: SourceLocation) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DagDefinitionError(f"{name} must be a positive integer, got {value!r}", location)
    return value


def _backoff(value: Any, location: SourceLocation) -> float:
    """Airflow takes True/False; newer releases also a multiplier. 0 means no backoff."""
    if value is True:
        return 2.0
    if value is False or value is None:
        return 0.0
    if isinstance(value, (int, float)) and value >= 1:
        return float(value)
    raise DagDefinitionError(f"retry_exponential_backoff must be True, False or a number >= 1, got {value!r}", location)


def _flag(name: str, value: Any, location: SourceLocation) -> bool:
    if not isinstance(value, bool):
        raise DagDefinitionError(f"{name} must be True or False, got {value!r}", location)
    return value


def _with_operator_defaults(init: Any, given: dict[str, Any]) -> dict[str, Any]:
    """`given` with the DAG's (and task group's) default_args among OPERATOR_DEFAULT_ARGS that this
    `__init__` names as parameters and the call does not give, as Airflow's apply_defaults fills each
    class's own parameters (an AWS operator's aws_conn_id, region_name, deferrable...): a subclass
    that passes one to its base keeps its value."""
    group = given.get("task_group")
    dag = given.get("dag") or (group.dag if group else None) or current_dag()
    if dag is None:
        return given
    group = group or current_task_group(dag)
    defaults = {**dag.default_args, **(group.default_args if group else {})}
    wanted = [key for key in OPERATOR_DEFAULT_ARGS if key in defaults and key not in given]
    if not wanted:
        return given
    named = _parameters(init)
    return {**{key: defaults[key] for key in wanted if key in named}, **given}


@functools.cache
def _parameters(init: Any) -> frozenset[str]:
    """The parameters an `__init__` names (not those its **kwargs passes on)."""
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(name for name, p in inspect.signature(init).parameters.items() if p.kind in kinds)
