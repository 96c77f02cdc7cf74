"""XComArg: a reference to a task's future return value (TaskFlow calls and `operator.output`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airstep.contract import XCOM_RETURN_KEY
from airstep.errors import DagDefinitionError, caller_location
from airstep.sdk.dependencies import DependencyMixin
from airstep.sdk.param import NOTSET

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator


class Reference:
    """A value known only when the DAG runs: a task's output (XComArg), or a mapped task group's
    argument. A task holding one in its arguments is downstream of the tasks it refers to, and
    resolves it in its try's context."""

    def references(self) -> list[XComArg]:
        """The task outputs this value is made from (each one an edge into a task using it)."""
        raise NotImplementedError

    def resolve(self, context: dict[str, Any]) -> Any:
        raise NotImplementedError


class XComArg(Reference, DependencyMixin):
    """The future return value of a task: pass it to another task to create the edge and the value."""

    def __init__(self, operator: BaseOperator, key: str = XCOM_RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __getitem__(self, key: str) -> XComArg:
        """The task's XCom under `key` (one of a `multiple_outputs` task's keys, or a pushed one)."""
        return XComArg(self.operator, key)

    @property
    def is_setup(self) -> bool:
        return self.operator.is_setup

    @property
    def is_teardown(self) -> bool:
        return self.operator.is_teardown

    def as_setup(self) -> XComArg:
        self.operator.as_setup()
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> XComArg:
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> Any:
        return self.operator.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.operator.__exit__(*exc)

    @property
    def roots(self) -> list[BaseOperator]:
        return [self.operator]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self.operator]

    def resolve(self, context: dict[str, Any]) -> Any:
        """The value, once the task has run (Airflow's `XComArg.resolve`: a missing return value is
        None, a missing XCom under another key is an error)."""
        missing = object()
        value = context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key, map_indexes=-1, default=missing)
        if value is not missing:
            return value
        if self.key == XCOM_RETURN_KEY:
            return None
        raise KeyError(f"XComNotFound: task {self.operator.task_id!r} pushed no XCom under key {self.key!r}")

    def references(self) -> list[XComArg]:
        return [self]

    def zip(self, *others: XComArg, fillvalue: Any = NOTSET) -> XComArg:
        """Airflow's `XComArg.zip`: tuples of the values at each position, to the shortest input
        (to the longest with `fillvalue`)."""
        return ZippedXComArg((self, *others), fillvalue)

    def map(self, function: Any) -> XComArg:
        """Airflow's `XComArg.map`: `function` applied to each value (in the task that uses it)."""
        return MappedXComArg(self, function)

    def __iter__(self) -> Iterator[Any]:
        raise DagDefinitionError(
            f"the output of task {self.operator.task_id!r} is only known when the DAG runs; "
            "pass it to another task instead of iterating over it",
            caller_location(),
        )


class ZippedXComArg(XComArg):
    """Several task outputs zipped (`a.zip(b, ...)`)."""

    def __init__(self, args: tuple[XComArg, ...], fillvalue: Any) -> None:
        super().__init__(args[0].operator)
        self.args = args
        self.fillvalue = fillvalue

    def __repr__(self) -> str:
        return f"ZippedXComArg({', '.join(map(repr, self.args))})"

    def references(self) -> list[XComArg]:
        return [ref for arg in self.args for ref in arg.references()]

    def resolve(self, context: dict[str, Any]) -> Any:
        values = [_items(arg.resolve(context)) for arg in self.args]
        if self.fillvalue is NOTSET:
            return list(zip(*values, strict=False))
        return list(itertools.zip_longest(*values, fillvalue=self.fillvalue))


class MappedXComArg(XComArg):
    """A task output with a function applied to each of its values (`a.map(f)`)."""

    def __init__(self, arg: XComArg, function: Any) -> None:
        super().__init__(arg.operator, arg.key)
        self.arg = arg
        self.function = function

    def __repr__(self) -> str:
        return f"MappedXComArg({self.arg!r}, {getattr(self.function, '__name__', self.function)!r})"

    def references(self) -> list[XComArg]:
        return self.arg.references()

    def resolve(self, context: dict[str, Any]) -> Any:
        return [self.function(value) for value in _items(self.arg.resolve(context))]


def _items(value: Any) -> list[Any]:
    """What mapping iterates: a list's items, a dict's (key, value) pairs, as Airflow does."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(f"UnmappableXComTypePushed: unmappable return type {type(value).__qualname__!r}")


def iter_xcom_args(value: Any) -> Iterator[XComArg]:
    """Every task output (plain XComArg) inside a (possibly nested) argument structure."""
    if isinstance(value, Reference):
        yield from value.references()
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from iter_xcom_args(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_xcom_args(item)


def resolve_xcom_args(value: Any, context: dict[str, Any]) -> Any:
    """`value` with every Reference inside it replaced by the value it refers to."""
    if isinstance(value, Reference):
        return value.resolve(context)
    if isinstance(value, list):
        return [resolve_xcom_args(v, context) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_xcom_args(v, context) for v in value)
    if isinstance(value, dict):
        return {k: resolve_xcom_args(v, context) for k, v in value.items()}
    return value
