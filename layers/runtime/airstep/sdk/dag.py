"""The DAG object, the `with DAG(...)` context stack and the `@dag` decorator."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airstep.errors import DagDefinitionError, ParamValidationError, SourceLocation, caller_location
from airstep.sdk.deadline import DeadlineAlert, deadline_alerts
from airstep.sdk.param import resolve_params, split_params
from airstep.sdk.schedule import parse_schedule
from airstep.trigger_rule import TriggerRule

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.taskgroup import TaskGroup

KEY_PATTERN = re.compile(r"^[\w.-]+$")
MAX_ID_LENGTH = 250
_SUFFIX = re.compile(r"__\d+$")  # what Airflow appends to a reused TaskFlow or group name

# A task's callbacks, run by the executor around each try (airstep.runtime.executor).
TASK_CALLBACKS = (
    "on_execute_callback",
    "on_success_callback",
    "on_failure_callback",
    "on_retry_callback",
    "on_skipped_callback",
)
# default_args keys airstep applies to every task; Airflow accepts more, we refuse what we would ignore.
SUPPORTED_DEFAULT_ARGS = (
    "owner",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "trigger_rule",
    "queue",
    "do_xcom_push",
    "executor",
    "executor_config",
    *TASK_CALLBACKS,
    *(
        OPERATOR_DEFAULT_ARGS := (  # passed to each operator whose __init__ takes them (Airflow's apply_defaults)
            "aws_conn_id",
            "region_name",
            "verify",
            "botocore_config",
            "deferrable",
            "wait_for_completion",
            "waiter_delay",
            "waiter_max_attempts",
            "sleep_time",
            "max_tries",
            "poke_interval",
            "timeout",
            "mode",
            "soft_fail",
            "exponential_backoff",
            "max_wait",
        )
    ),
)
Callback = Callable[[dict[str, Any]], Any]

_dag_stack: list[DAG] = []
_collectors: list[list[DAG]] = []


def validate_key(kind: str, value: Any, location: SourceLocation) -> str:
    """Check a dag_id or task_id the way Airflow does (letters, digits, `_`, `.`, `-`; 250 chars)."""
    if not isinstance(value, str) or not value:
        raise DagDefinitionError(f"{kind} must be a non-empty string, got {value!r}", location)
    if len(value) > MAX_ID_LENGTH:
        raise DagDefinitionError(f"{kind} {value[:40]!r}... is longer than {MAX_ID_LENGTH} characters", location)
    if not KEY_PATTERN.match(value):
        raise DagDefinitionError(
            f"{kind} {value!r} may contain only letters, digits, '_', '.' and '-' (it names Step Functions states)",
            location,
        )
    return value


def renamed(name: str, qualify: Callable[[str], str], taken: Iterable[str]) -> str:
    """Airflow's renaming of a reused TaskFlow or task group name: name__<highest suffix in use + 1>,
    the suffixes read from `taken` ids once `qualify` has prefixed the name."""
    core = _SUFFIX.split(name)[0]
    pattern = re.compile(rf"^{re.escape(qualify(core))}__(\d+)$")
    suffixes = [int(m.group(1)) for used in taken if (m := pattern.match(used))]
    return f"{core}__{max(suffixes, default=0) + 1}"


def current_dag() -> DAG | None:
    """The innermost DAG of an enclosing `with DAG(...)` or `@dag` call, if any."""
    return _dag_stack[-1] if _dag_stack else None


class collect_dags:  # noqa: N801 - used like a function: `with collect_dags() as dags:`
    """Records every DAG constructed inside the block (how the loader finds a file's DAGs)."""

    def __enter__(self) -> list[DAG]:
        self.dags: list[DAG] = []
        _collectors.append(self.dags)
        return self.dags

    def __exit__(self, *exc: object) -> None:
        from airstep.sdk.setup_teardown import context

        _collectors.remove(self.dags)
        _dag_stack.clear()
        context.reset()


DEFAULT_MAX_ACTIVE_RUNS = 16  # Airflow's [core] max_active_runs_per_dag
MAX_ACTIVE_TASKS_LIMIT = 1000  # a run's slots are one DynamoDB item (400 KB): one holder each


class DAG:
    """A directed acyclic graph of tasks, with Airflow 3's constructor arguments."""

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        *,
        schedule: str | timedelta | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        catchup: bool = False,
        max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS,
        max_active_tasks: int | None = None,
        is_paused_upon_creation: bool | None = None,
        dagrun_timeout: timedelta | None = None,
        tags: list[str] | None = None,
        params: dict[str, Any] | None = None,
        default_args: dict[str, Any] | None = None,
        doc_md: str | None = None,
        template_searchpath: str | list[str] | None = None,
        user_defined_macros: dict[str, Any] | None = None,
        user_defined_filters: dict[str, Callable[..., Any]] | None = None,
        render_template_as_native_obj: bool = False,
        dag_display_name: str | None = None,
        on_success_callback: Callback | list[Callback] | None = None,
        on_failure_callback: Callback | list[Callback] | None = None,
        deadline: DeadlineAlert | list[DeadlineAlert] | None = None,
        location: SourceLocation | None = None,
    ) -> None:
        self.location = location or caller_location()
        self.dag_id = validate_key("dag_id", dag_id, self.location)
        self.dag_display_name: str = dag_display_name or dag_id
        # Run by the executor when the run ends (airstep.runtime.executor.run_dag_callbacks).
        self.on_success_callback = callbacks("on_success_callback", on_success_callback, self.location)
        self.on_failure_callback = callbacks("on_failure_callback", on_failure_callback, self.location)
        self.deadline = deadline_alerts(deadline, self.location)  # armed when a run starts (runtime/deadline_alerts.py)
        self.description = description
        self.doc_md = doc_md
        self.schedule = parse_schedule(schedule, self.location)
        self.start_date = _check_date("start_date", start_date, self.location)
        self.end_date = _check_date("end_date", end_date, self.location)
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise DagDefinitionError("end_date is before start_date", self.location)
        if self.schedule is not None and self.schedule.timed:
            try:
                self.schedule_timezone  # noqa: B018 - checked now: the schedule needs a named zone
            except ValueError as exc:
                raise DagDefinitionError(
                    f"{exc}: give start_date a named zone (pendulum.datetime(..., tz='Asia/Kolkata'))", self.location
                ) from None
        if not isinstance(catchup, bool):
            raise DagDefinitionError(f"catchup must be True or False, got {catchup!r}", self.location)
        self.catchup = catchup
        if isinstance(max_active_runs, bool) or not isinstance(max_active_runs, int) or max_active_runs < 1:
            message = f"max_active_runs must be a positive integer, got {max_active_runs!r}"
            raise DagDefinitionError(message, self.location)
        self.max_active_runs = max_active_runs
        self.max_active_tasks = _max_active_tasks(max_active_tasks, self.location)
        if is_paused_upon_creation is not None and not isinstance(is_paused_upon_creation, bool):
            message = f"is_paused_upon_creation must be True, False or None, got {is_paused_upon_creation!r}"
            raise DagDefinitionError(message, self.location)
        self.is_paused_upon_creation = is_paused_upon_creation
        if dagrun_timeout is not None and (
            not isinstance(dagrun_timeout, timedelta) or dagrun_timeout.total_seconds() < 1
        ):
            raise DagDefinitionError(
                f"dagrun_timeout must be a timedelta of 1 second or more, got {dagrun_timeout!r}", self.location
            )
        self.dagrun_timeout = dagrun_timeout
        self.tags = _check_tags(tags, self.location)
        self.params, self.param_schemas = split_params(params, self.location)
        self.default_args = check_default_args(default_args, self.location)
        # Jinja templates in task fields (airstep.sdk.templater renders them as Airflow does); the
        # loader sets `folder` to where the file's bytes are on this machine (its location may be s3://).
        self.folder = str(Path(self.location.file).resolve().parent)
        searchpath = [template_searchpath] if isinstance(template_searchpath, str) else template_searchpath
        self.template_searchpath: list[str] = [str(p) for p in searchpath or []]
        self.user_defined_macros: dict[str, Any] = dict(user_defined_macros or {})
        self.user_defined_filters: dict[str, Callable[..., Any]] = dict(user_defined_filters or {})
        if not isinstance(render_template_as_native_obj, bool):
            raise DagDefinitionError("render_template_as_native_obj must be True or False", self.location)
        self.render_template_as_native_obj = render_template_as_native_obj
        self.task_dict: dict[str, BaseOperator] = {}
        self.edge_labels: dict[tuple[str, str], str] = {}  # (upstream, downstream) -> Label text
        self.task_groups: dict[str, TaskGroup] = {}  # by full group id
        for collector in _collectors:
            collector.append(self)

    def __enter__(self) -> DAG:
        _dag_stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if _dag_stack and _dag_stack[-1] is self:
            _dag_stack.pop()

    def __repr__(self) -> str:
        return f"<DAG {self.dag_id}: {len(self.task_dict)} tasks>"

    @property
    def timezone(self) -> tzinfo:
        """Airflow's `dag.timezone`: start_date's zone, UTC if it has none (what the time branches
        compare in)."""
        return self.start_date.tzinfo if self.start_date and self.start_date.tzinfo else UTC

    @property
    def schedule_timezone(self) -> str:
        """The IANA name of the zone the DAG is scheduled in: its schedule's, else start_date's."""
        return (self.schedule and self.schedule.timezone) or _zone_name(self.start_date)

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def get_task(self, task_id: str) -> BaseOperator:
        return self.task_dict[task_id]

    def add_task(self, task: BaseOperator) -> None:
        if task.task_id in self.task_groups:
            raise DagDefinitionError(f"task_id {task.task_id!r} is already a task group's id", task.location)
        if task.task_id in self.task_dict:
            first = self.task_dict[task.task_id].location
            raise DagDefinitionError(
                f"duplicate task_id {task.task_id!r} in DAG {self.dag_id!r} (first defined at line {first.line})",
                task.location,
            )
        self.task_dict[task.task_id] = task

    def test(self, logical_date: datetime | str | None = None, run_conf: dict[str, Any] | None = None) -> Any:
        """Airflow's `dag.test()`: run this DAG once here, on the local engine, as `airstep run` does
        (`python my_dag.py` with `if __name__ == "__main__": dag.test()`); returns the run's outcome."""
        from importlib.metadata import entry_points

        runners = entry_points(group="airstep.local_runner")  # the CLI plugs in; Lambda has none
        if not runners:
            raise RuntimeError("dag.test() needs airstep's local engine: pip install airstep (with its CLI)")
        run_locally = next(iter(runners)).load()
        when = logical_date.isoformat() if isinstance(logical_date, datetime) else logical_date
        conf = json.dumps(run_conf) if run_conf is not None else None
        return run_locally(str(Path(self.location.file).resolve()), self.dag_id, when, conf)

    @property
    def task_group_ids(self) -> set[str]:
        return set(self.task_groups)

    def unique_task_id(self, base: str, group: TaskGroup | None = None) -> str:
        """Airflow's naming for a TaskFlow task whose id is taken (checked once `group` prefixes it;
        the prefix is not part of the answer)."""
        qualify = group.child_id if group else str
        return base if qualify(base) not in self.task_dict else renamed(base, qualify, self.task_dict)

    def validate(self) -> None:
        """What Airflow checks before it accepts a DAG: no cycle, valid param defaults if it has a
        schedule, and every work task right after a setup keeps the all_success trigger rule
        (DagDefinitionError otherwise)."""
        self.check_acyclic()
        if self.schedule is not None:
            try:
                resolve_params(self.params, self.param_schemas, {})
            except ParamValidationError as exc:
                raise DagDefinitionError(
                    f"Dag {self.dag_id!r} is not allowed to define a Schedule, as there are required params "
                    f"without default values, or the default values are not valid ({exc})",
                    self.location,
                ) from None
        for task in self.tasks:
            if not task.is_setup:
                continue
            for down in task.get_direct_relatives():
                if not down.is_teardown and down.trigger_rule is not TriggerRule.ALL_SUCCESS:
                    raise DagDefinitionError(
                        f"task {down.task_id!r} follows setup task {task.task_id!r}: "
                        "Setup tasks must be followed with trigger rule ALL_SUCCESS.",
                        down.location,
                    )

    def check_acyclic(self) -> None:
        """Raise DagDefinitionError naming the cycle if the dependencies loop (iterative DFS)."""
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.task_dict, white)
        for start in self.task_dict:
            if colour[start] != white:
                continue
            path: list[str] = [start]
            iterators = [iter(sorted(self.task_dict[start].downstream_task_ids))]
            colour[start] = grey
            while iterators:
                nxt = next(iterators[-1], None)
                if nxt is None:
                    colour[path.pop()] = black
                    iterators.pop()
                    continue
                if colour[nxt] == grey:
                    cycle = [*path[path.index(nxt) :], nxt]
                    closing_edge = self.task_dict[nxt].edge_locations.get(path[-1])
                    raise DagDefinitionError(
                        f"DAG {self.dag_id!r} has a cycle: {' -> '.join(cycle)}",
                        closing_edge or self.task_dict[nxt].location,
                    )
                if colour[nxt] == white:
                    colour[nxt] = grey
                    path.append(nxt)
                    iterators.append(iter(sorted(self.task_dict[nxt].downstream_task_ids)))


def dag(dag_id: str | Callable[..., Any] | None = None, **dag_kwargs: Any) -> Any:
    """`@dag` / `@dag(...)`: calling the decorated function builds the DAG and returns it."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., DAG]:
        location = SourceLocation(fn.__code__.co_filename, fn.__code__.co_firstlineno)

        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> DAG:
            kwargs_for_dag = dict(dag_kwargs)
            if "description" not in kwargs_for_dag and fn.__doc__:
                kwargs_for_dag.setdefault("doc_md", fn.__doc__)
            name = dag_id if isinstance(dag_id, str) else fn.__name__
            with DAG(name, location=location, **kwargs_for_dag) as new_dag:
                fn(*args, **kwargs)
            return new_dag

        return build

    if callable(dag_id):
        return decorate(dag_id)
    return decorate


def _max_active_tasks(value: Any, location: SourceLocation) -> int | None:
    """Task instances of one run that may run at once; None (the default): no limit. Airflow's
    default is [core] max_active_tasks_per_dag (16); airstep adds no slot-taking step to a DAG that
    does not ask for one."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ACTIVE_TASKS_LIMIT:
        message = f"max_active_tasks must be an integer from 1 to {MAX_ACTIVE_TASKS_LIMIT:,}, got {value!r}"
        raise DagDefinitionError(message, location)
    return value


def callbacks(name: str, value: Any, location: SourceLocation) -> list[Callback]:
    """A callback argument (a callable, a list of them, or None) as a list."""
    found = [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]
    for callback in found:
        if not callable(callback):
            raise DagDefinitionError(f"{name} must be a callable or a list of callables, got {callback!r}", location)
    return found


def _check_date(name: str, value: Any, location: SourceLocation) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    raise DagDefinitionError(f"{name} must be a datetime, got {type(value).__name__}", location)


def _check_tags(tags: Any, location: SourceLocation) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, (list, tuple, set)) or not all(isinstance(t, str) for t in tags):
        raise DagDefinitionError("tags must be a list of strings", location)
    return sorted(tags) if isinstance(tags, set) else list(tags)


def check_default_args(default_args: Any, location: SourceLocation) -> dict[str, Any]:
    if default_args is None:
        return {}
    if not isinstance(default_args, dict):
        raise DagDefinitionError("default_args must be a dict", location)
    unknown = sorted(set(default_args) - set(SUPPORTED_DEFAULT_ARGS))
    if unknown:
        raise DagDefinitionError(
            f"unknown default_args key(s) {', '.join(map(repr, unknown))} "
            f"(airstep supports: {', '.join(SUPPORTED_DEFAULT_ARGS)})",
            location,
        )
    return dict(default_args)


def _zone_name(value: datetime | None) -> str:
    """The IANA zone of start_date (Airflow schedules in the DAG's time zone); UTC if naive. A fixed
    whole-hour offset is its `Etc/GMT` zone (EventBridge Scheduler takes IANA names only); any other
    fixed offset has none (ValueError)."""
    if value is None or value.tzinfo is None:
        return "UTC"
    key = getattr(value.tzinfo, "key", None) or getattr(value.tzinfo, "name", None)
    if key and _is_iana(str(key)):
        return str(key)
    offset = value.utcoffset() or timedelta(0)
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    if not offset:
        return "UTC"
    if rest == 0 and -12 <= hours <= 14:
        return f"Etc/GMT{-hours:+d}"  # the IANA names invert the sign: Etc/GMT-2 is UTC+02:00
    raise ValueError(f"start_date's fixed UTC offset {value.strftime('%z')} is no IANA time zone")


def _is_iana(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
