"""Dynamic task mapping: `.partial(...)`, `.expand(...)` (Airflow's cross product of the expanded
arguments) and `.expand_kwargs(...)` (one set of arguments per instance). A mapped task is one task
in the DAG and the graph model; it becomes one instance per combination when it runs (map index `i`:
the last expanded argument varies fastest, as in Airflow). A dict maps to its (key, value) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airstep.errors import DagDefinitionError, SourceLocation
from airstep.sdk.templater import Pulled
from airstep.sdk.xcom_arg import Reference, XComArg, iter_xcom_args, resolve_xcom_args

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator

MAPPABLE_LITERALS = (list, tuple, dict)


class MappedArgument(str):
    """What a mapped classic operator's expanded argument holds until each instance gets its value."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ExpandInput:
    """What a mapped task expands over: named arguments (`expand`), or a list of keyword-argument
    dicts (`expand_kwargs`); either may hold upstream outputs."""

    arguments: dict[str, Any] = field(default_factory=dict)
    kwargs_list: Any = None

    def references(self) -> list[XComArg]:
        return list(iter_xcom_args(self.kwargs_list if self.kwargs_list is not None else self.arguments))

    def resolve(self, context: dict[str, Any]) -> list[dict[str, Any]] | dict[str, list[Any]]:
        """The input with upstream outputs pulled: the kwargs list, or each argument's items."""
        if self.kwargs_list is not None:
            resolved = resolve_xcom_args(self.kwargs_list, context)
            if not isinstance(resolved, (list, tuple)) or not all(
                isinstance(kw, Mapping) and all(isinstance(k, str) for k in kw) for kw in resolved
            ):
                raise TypeError(f"expand_kwargs() expects a list of dicts with string keys, got {resolved!r:.200}")
            return [dict(kw) for kw in resolved]
        return {name: _items(name, resolve_xcom_args(value, context)) for name, value in self.arguments.items()}

    def length(self, task_id: str, resolved: list[dict[str, Any]] | dict[str, list[Any]], max_length: int) -> int:
        """How many instances the resolved input makes, with Airflow's errors."""
        lengths = [len(resolved)] if isinstance(resolved, list) else [len(items) for items in resolved.values()]
        for length in lengths:
            check_length(length, max_length)
        total = 1
        for length in lengths:
            total *= length
        if total > max_length:
            raise ValueError(
                f"task {task_id!r} would map to {total} instances, more than max_map_length ({max_length})"
            )
        return total

    def kwargs_of(self, resolved: list[dict[str, Any]] | dict[str, list[Any]], map_index: int) -> dict[str, Any]:
        """The arguments of instance `map_index`."""
        if isinstance(resolved, list):
            return resolved[map_index]
        chosen = mapped_kwargs(resolved, map_index)
        # an upstream's data is never rendered as a template
        return {k: Pulled(v) if isinstance(self.arguments[k], XComArg) else v for k, v in chosen.items()}


class GroupArgument(Reference):
    """A mapped task group's expanded argument (Airflow's MappedArgument): each instance of a task
    in the group resolves it to its own map index's value."""

    def __init__(self, expand_input: ExpandInput, key: str) -> None:
        self.expand_input = expand_input
        self.key = key

    def __repr__(self) -> str:
        return f"GroupArgument({self.key!r})"

    def references(self) -> list[XComArg]:
        return self.expand_input.references()

    def resolve(self, context: dict[str, Any]) -> Any:
        values = self.expand_input.resolve(context)
        kwargs = self.expand_input.kwargs_of(values, context["ti"].map_index)
        if self.key not in kwargs:
            raise KeyError(f"the mapped task group's instance got no argument {self.key!r}")
        value = kwargs[self.key]
        return value.value if isinstance(value, Pulled) else value


def check_length(length: int, max_length: int) -> None:
    """Airflow's cap on what one argument expands over ([core] max_map_length)."""
    if length > max_length:
        raise ValueError(f"UnmappableXComLengthPushed: unmappable return value length: {length} > {max_length}")


def _items(name: str, value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(f"UnmappableXComTypePushed: unmappable return type {type(value).__qualname__!r} ({name}=)")


def check_not_both(partial: dict[str, Any], mapped: dict[str, Any], location: SourceLocation) -> None:
    """An argument is either shared (`partial`) or expanded, never both."""
    both = sorted(set(mapped) & set(partial))
    if both:
        raise DagDefinitionError(f"arguments given to both partial() and expand(): {', '.join(both)}", location)


def mapped_placeholder(name: str, value: Any) -> Any:
    """A value for the operator's constructor to check: a literal list's first item, or a placeholder."""
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], XComArg):
        return value[0]
    return MappedArgument(f"<mapped argument {name}>")


def set_expand_input(operator: BaseOperator, expand_input: ExpandInput, location: SourceLocation) -> None:
    """Make `operator` a mapped task over `expand_input`."""
    from airstep.sdk.taskgroup import mapped_group_of

    group = mapped_group_of(operator.task_group)
    if group is not None:
        raise DagDefinitionError(
            f"task {operator.task_id!r}: a mapped task inside a mapped task group ({group.group_id!r}) "
            "is not supported by airstep yet",
            location,
        )
    check_expand_input(f"task {operator.task_id!r}", expand_input, location)
    for arg in expand_input.references():
        arg.operator.set_downstream(operator)
    operator.expand_input = expand_input


def check_expand_input(subject: str, expand_input: ExpandInput, location: SourceLocation) -> None:
    """What `subject` (a task or a task group) expands over must be mappable: lists, tuples, dicts or
    upstream outputs, none of a task in a mapped task group (Airflow 3.3 cannot expand over one
    either: its instances' values fail the check or never make a list)."""
    from airstep.sdk.taskgroup import mapped_group_of

    for reference in expand_input.references():
        group = mapped_group_of(reference.operator.task_group)
        if group is not None:
            raise DagDefinitionError(
                f"{subject}: cannot expand over the output of {reference.operator.task_id!r}, a task in mapped "
                f"task group {group.group_id!r} (Airflow 3.3 cannot either); reduce it in a task first",
                location,
            )
    if expand_input.kwargs_list is None:
        if not expand_input.arguments:
            raise DagDefinitionError(f"{subject}: no arguments to expand against", location)
        for name, value in expand_input.arguments.items():
            if not isinstance(value, (*MAPPABLE_LITERALS, XComArg)):
                raise DagDefinitionError(f"{subject}: Cannot map to {value!r} ({name}=)", location)
    elif not isinstance(expand_input.kwargs_list, (list, tuple, XComArg)):
        raise DagDefinitionError(
            f"{subject}: expand_kwargs() expects a list of dicts or a task's output, "
            f"got {type(expand_input.kwargs_list).__name__}",
            location,
        )


def mapped_kwargs(values: dict[str, list[Any]], map_index: int) -> dict[str, Any]:
    """The expanded arguments of instance `map_index` (the last argument varies fastest)."""
    chosen: dict[str, Any] = {}
    rest = map_index
    for name in reversed(list(values)):
        items = values[name]
        rest, position = divmod(rest, len(items))
        chosen[name] = items[position]
    return {name: chosen[name] for name in values}
