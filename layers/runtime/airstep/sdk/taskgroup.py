"""Task groups: `TaskGroup(...)` as a context manager and `@task_group`, with Airflow 3's ids,
default_args and dependencies.

A task created inside a group gets the id `group.task` (`prefix_group_id=True`, the default; nested
groups prefix their parents' ids) and the group's default_args over the DAG's. A group stands on
either side of `>>`: its roots (tasks with no upstream inside it) and its leaves (tasks with no
downstream inside it) take the edges, as Airflow computes them when the edge is set.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airstep.errors import DagDefinitionError, SourceLocation, caller_location
from airstep.sdk.dag import DAG, check_default_args, current_dag, renamed, validate_key
from airstep.sdk.dependencies import DependencyMixin

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.mapping import ExpandInput

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


def mapped_group_of(group: TaskGroup | None) -> MappedTaskGroup | None:
    """The mapped task group holding `group` (or `group` itself), if any."""
    while group is not None:
        if isinstance(group, MappedTaskGroup):
            return group
        group = group.parent_group
    return None


class MappedTaskGroup(TaskGroup):
    """A task group built by `.expand()` / `.expand_kwargs()`: every task in it runs once per map
    index, reading its upstreams in the group at the same index."""

    def __init__(self, group_id: str, *, expand_input: ExpandInput, **kwargs: Any) -> None:
        super().__init__(group_id, **kwargs)
        if mapped_group_of(self.parent_group) is not None:
            raise DagDefinitionError("Nested Mapped TaskGroups are not yet supported", self.location)
        self.expand_input = expand_input

    def __exit__(self, *exc: object) -> None:
        """As Airflow: the tasks that produce what the group expands over are upstream of its roots."""
        super().__exit__(*exc)
        for reference in self.expand_input.references():
            self.set_upstream(reference.operator)


class TaskGroupDecorator:
    """What `@task_group` returns: each call builds the group, running the function inside it;
    `.partial(...)`, `.expand(...)` and `.expand_kwargs(...)` build a mapped task group."""

    def __init__(
        self, function: Callable[..., Any], group_kwargs: dict[str, Any], partial_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.function = function
        self.group_kwargs = group_kwargs
        self.partial_kwargs = partial_kwargs or {}
        functools.update_wrapper(self, function)  # type: ignore[arg-type]

    def override(self, **group_kwargs: Any) -> TaskGroupDecorator:
        return TaskGroupDecorator(self.function, {**self.group_kwargs, **group_kwargs}, self.partial_kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._build(TaskGroup, caller_location(), args, kwargs)

    def partial(self, **kwargs: Any) -> TaskGroupDecorator:
        """The arguments every instance of the mapped group shares."""
        self._check_names("partial()", kwargs, caller_location())
        return TaskGroupDecorator(self.function, self.group_kwargs, {**self.partial_kwargs, **kwargs})

    def expand(self, **mapped: Any) -> Any:
        """A mapped task group over the cross product of `mapped` (lists, dicts or upstream outputs)."""
        from airstep.sdk.mapping import ExpandInput, check_not_both

        location = caller_location()
        if not mapped:
            raise DagDefinitionError("no arguments to expand against", location)
        self._check_names("expand()", mapped, location)
        check_not_both(self.partial_kwargs, mapped, location)
        return self._mapped(ExpandInput(arguments=mapped), list(mapped), location)

    def expand_kwargs(self, kwargs: Any) -> Any:
        """A mapped task group with one set of arguments per dict in `kwargs` (a list, or an upstream output)."""
        from airstep.sdk.mapping import ExpandInput

        location = caller_location()
        parameters = inspect.signature(self.function).parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            raise DagDefinitionError(
                "calling expand_kwargs() on task group function with * or ** is not supported", location
            )
        names = [p.name for p in parameters if p.name not in self.partial_kwargs]
        return self._mapped(ExpandInput(kwargs_list=kwargs), names, location)

    def _mapped(self, expand_input: ExpandInput, names: list[str], location: SourceLocation) -> Any:
        from airstep.sdk.mapping import GroupArgument, check_expand_input

        check_expand_input(f"task group {self.function.__name__!r}", expand_input, location)
        arguments = {name: GroupArgument(expand_input, name) for name in names}
        group_class = functools.partial(MappedTaskGroup, expand_input=expand_input)
        return self._build(group_class, location, (), {**self.partial_kwargs, **arguments})

    def _build(self, group_class: Callable[..., TaskGroup], location: SourceLocation, args: Any, kwargs: Any) -> Any:
        options = {"group_id": self.function.__name__, **self.group_kwargs}
        with group_class(add_suffix_on_collision=True, location=location, **options) as group:
            if self.function.__doc__ and not group.tooltip:
                group.tooltip = self.function.__doc__
            returned = self.function(*args, **kwargs)
        # A function that returns a task (or its output) binds dependencies to it, else to the group.
        return returned if returned is not None else group

    def _check_names(self, method: str, kwargs: dict[str, Any], location: SourceLocation) -> None:
        parameters = inspect.signature(self.function).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return
        unknown = sorted(set(kwargs) - set(parameters))
        if unknown:
            raise DagDefinitionError(
                f"{method} got unexpected keyword arguments for task group "
                f"{self.function.__name__!r}: {', '.join(unknown)}",
                location,
            )


def task_group(python_callable: Callable[..., Any] | None = None, **group_kwargs: Any) -> Any:
    """`@task_group` / `@task_group(group_id=..., default_args=..., ...)`."""
    if python_callable is not None:
        return TaskGroupDecorator(python_callable, group_kwargs)
    return lambda function: TaskGroupDecorator(function, group_kwargs)
