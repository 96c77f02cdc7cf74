"""Dynamic task mapping: `.partial(...)` and `.expand(...)`, Airflow's cross product of the expanded
arguments. A mapped task is one task in the DAG and the graph model; it becomes one instance per
combination when it runs (map index `i`: the last expanded argument varies fastest, as in Airflow).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airstep.errors import DagDefinitionError, SourceLocation
from airstep.sdk.xcom_arg import XComArg, iter_xcom_args

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator

MAPPABLE_LITERALS = (list, tuple)


class MappedArgument(str):
    """What a mapped classic operator's expanded argument holds until each instance gets its value."""

    __slots__ = ()


def mapped_placeholder(name: str, value: Any) -> Any:
    """A value for the operator's constructor to check: a literal list's first item, or a placeholder."""
    if isinstance(value, MAPPABLE_LITERALS) and value:
        return value[0]
    return MappedArgument(f"<mapped argument {name}>")


def set_expand_input(operator: BaseOperator, mapped: dict[str, Any], location: SourceLocation) -> None:
    """Make `operator` a mapped task over `mapped` ({argument: list or upstream output})."""
    if not mapped:
        raise DagDefinitionError(f"task {operator.task_id!r}: no arguments to expand against", location)
    for name, value in mapped.items():
        if isinstance(value, Mapping):
            raise DagDefinitionError(
                f"task {operator.task_id!r}: expanding over a dict ({name}=) is not supported by airstep yet; "
                "expand over a list (of pairs: list(d.items()))",
                location,
            )
        if not isinstance(value, (*MAPPABLE_LITERALS, XComArg)):
            raise DagDefinitionError(f"task {operator.task_id!r}: Cannot map to {value!r} ({name}=)", location)
        for arg in iter_xcom_args(value):
            arg.operator.set_downstream(operator)
    operator.expand_input = dict(mapped)


def map_length(task_id: str, values: dict[str, Any], max_length: int) -> int:
    """How many instances the resolved expanded arguments make, with Airflow's errors."""
    length = 1
    for name, value in values.items():
        if not isinstance(value, MAPPABLE_LITERALS):
            raise TypeError(f"UnmappableXComTypePushed: unmappable return type {type(value).__qualname__!r} ({name}=)")
        if len(value) > max_length:
            raise ValueError(f"UnmappableXComLengthPushed: unmappable return value length: {len(value)} > {max_length}")
        length *= len(value)
    if length > max_length:
        raise ValueError(f"task {task_id!r} would map to {length} instances, more than max_map_length ({max_length})")
    return length


def mapped_kwargs(values: dict[str, Any], map_index: int) -> dict[str, Any]:
    """The expanded arguments of instance `map_index` (the last argument varies fastest)."""
    chosen: dict[str, Any] = {}
    rest = map_index
    for name in reversed(list(values)):
        items = list(values[name])
        rest, position = divmod(rest, len(items))
        chosen[name] = items[position]
    return {name: chosen[name] for name in values}
