"""Task groups: `TaskGroup(...)` as a context manager and `@task_group`, with Airflow 3's ids,
default_args and dependencies.

A task created inside a group gets the id `group.task` (`prefix_group_id=True`, the default; nested
groups prefix their parents' ids) and the group's default_args over the DAG's. A group stands on
either side of `>>`: its roots (tasks with no upstream inside it) and its leaves (tasks with no
downstream inside it) take the edges, as Airflow computes them when the edge is set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airstep.errors import DagDefinitionError, SourceLocation, caller_location
from airstep.sdk.dag import DAG, check_default_args, current_dag, renamed, validate_key
from airstep.sdk.dependencies import DependencyMixin

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator

_group_stack: list[TaskGroup] = []


def current_task_group(dag: DAG) -> TaskGroup | None:
    """The innermost enclosing group of `dag`, if any."""
    for group in reversed(_group_stack):
        if group.dag is dag:
            return group
    return None


class TaskGroup(DependencyMixin):
    """A named set of tasks (and groups) within a DAG."""

    def __init__(
        self,
        group_id: str,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        add_suffix_on_collision: bool = False,
        location: SourceLocation | None = None,
    ) -> None:
        self.location = location or caller_location()
        owning_dag = dag or (parent_group.dag if parent_group else None) or current_dag()
        if owning_dag is None:
            raise DagDefinitionError(f"task group {group_id!r} is not inside a DAG", self.location)
        self.dag: DAG = owning_dag
        self.parent_group = parent_group or current_task_group(owning_dag)
        self.prefix_group_id = prefix_group_id
        self.tooltip = tooltip
        self._group_id = validate_key("group_id", group_id, self.location)
        if self.group_id in owning_dag.task_group_ids or self.group_id in owning_dag.task_dict:
            if not add_suffix_on_collision:
                raise DagDefinitionError(f"group_id {self.group_id!r} is already used in the DAG", self.location)
            qualify = self.parent_group.child_id if self.parent_group else str
            self._group_id = renamed(self._group_id, qualify, owning_dag.task_group_ids)
        inherited = self.parent_group.default_args if self.parent_group else {}
        self.default_args: dict[str, Any] = {**inherited, **check_default_args(default_args, self.location)}
        self.tasks: list[BaseOperator] = []  # directly in this group
        self.children: list[TaskGroup] = []
        if self.parent_group:
            self.parent_group.children.append(self)
        owning_dag.task_groups[self.group_id] = self

    @property
    def group_id(self) -> str:
        """The full id: prefixed with the parent's, when the parent prefixes its children's ids."""
        parent = self.parent_group
        return parent.child_id(self._group_id) if parent else self._group_id

    def child_id(self, label: str) -> str:
        """The id of a task or group named `label` inside this group."""
        return f"{self.group_id}.{label}" if self.prefix_group_id else label

    def __iter__(self) -> Iterator[BaseOperator]:
        """Every task in the group, nested groups included."""
        yield from self.tasks
        for child in self.children:
            yield from child

    def __enter__(self) -> TaskGroup:
        _group_stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if _group_stack and _group_stack[-1] is self:
            _group_stack.pop()

    @property
    def roots(self) -> list[BaseOperator]:
        tasks = list(self)
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if t.upstream_task_ids.isdisjoint(ids)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks with no downstream in the group; a teardown stands aside for the last work task(s)
        before it, as in Airflow's `TaskGroup.get_leaves`."""
        tasks = list(self)
        ids = {t.task_id for t in tasks}

        def has_work_downstream(task: BaseOperator, exclude: str) -> bool:
            return any(
                d.task_id != exclude and d.task_id in ids and not d.is_teardown for d in task.get_direct_relatives()
            )

        def work_before(task: BaseOperator) -> Iterator[BaseOperator]:
            for upstream in task.get_direct_relatives(upstream=True):
                if upstream.task_id not in ids or (task.is_teardown and upstream.is_setup):
                    continue
                if upstream.is_teardown:
                    yield from work_before(upstream)
                elif not has_work_downstream(upstream, exclude=task.task_id):
                    yield upstream

        found: list[BaseOperator] = []
        for task in tasks:
            if task.downstream_task_ids.isdisjoint(ids):
                found.extend([task] if not task.is_teardown else work_before(task))
        return found

    def __repr__(self) -> str:
        return f"<TaskGroup {self.group_id}>"


class TaskGroupDecorator:
    """What `@task_group` returns: each call builds the group, running the function inside it."""

    def __init__(self, function: Callable[..., Any], group_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.group_kwargs = group_kwargs
        functools.update_wrapper(self, function)  # type: ignore[arg-type]

    def override(self, **group_kwargs: Any) -> TaskGroupDecorator:
        return TaskGroupDecorator(self.function, {**self.group_kwargs, **group_kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        options = {"group_id": self.function.__name__, **self.group_kwargs}
        with TaskGroup(add_suffix_on_collision=True, location=caller_location(), **options) as group:
            if self.function.__doc__ and not group.tooltip:
                group.tooltip = self.function.__doc__
            returned = self.function(*args, **kwargs)
        # A function that returns a task (or its output) binds dependencies to it, else to the group.
        return returned if returned is not None else group


def task_group(python_callable: Callable[..., Any] | None = None, **group_kwargs: Any) -> Any:
    """`@task_group` / `@task_group(group_id=..., default_args=..., ...)`."""
    if python_callable is not None:
        return TaskGroupDecorator(python_callable, group_kwargs)
    return lambda function: TaskGroupDecorator(function, group_kwargs)
