"""The `>>` / `<<` operators, written once over set_upstream / set_downstream."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator


class DependencyMixin:
    """Anything that can stand on either side of `>>`: operators and TaskFlow references."""

    @property
    def roots(self) -> list[BaseOperator]:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def leaves(self) -> list[BaseOperator]:  # pragma: no cover - overridden
        raise NotImplementedError

    def set_upstream(self, other: DependencyMixin | Sequence[DependencyMixin]) -> None:
        for upstream in _flatten(other):
            for leaf in upstream.leaves:
                for root in self.roots:
                    root.add_upstream(leaf)

    def set_downstream(self, other: DependencyMixin | Sequence[DependencyMixin]) -> None:
        for downstream in _flatten(other):
            downstream.set_upstream(self)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> DependencyMixin:
        # [a, b] >> self
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> DependencyMixin:
        # [a, b] << self
        self.set_downstream(other)
        return self


def _flatten(items: Any) -> Iterable[DependencyMixin]:
    if isinstance(items, DependencyMixin):
        yield items
        return
    if isinstance(items, (list, tuple, set)):
        for item in items:
            yield from _flatten(item)
        return
    from airstep.errors import DagDefinitionError

    raise DagDefinitionError(f"cannot set a dependency on {type(items).__name__!s}: expected a task or a list of tasks")


def chain(*elements: DependencyMixin | Sequence[DependencyMixin]) -> None:
    """Airflow's chain(): each element runs after the previous; two adjacent lists pair up one-to-one."""
    from airstep.errors import DagDefinitionError

    for left, right in zip(elements, elements[1:]):
        if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            if len(left) != len(right):
                raise DagDefinitionError(
                    f"chain() got adjacent lists of different lengths ({len(left)} and {len(right)})"
                )
            for up, down in zip(left, right):
                up >> down
        elif isinstance(left, (list, tuple)):
            for up in left:
                up >> right
        else:
            left >> right  # type: ignore[operator]


def cross_downstream(
    from_tasks: Sequence[DependencyMixin], to_tasks: DependencyMixin | Sequence[DependencyMixin]
) -> None:
    """Every task in `from_tasks` becomes upstream of every task in `to_tasks`."""
    for task in from_tasks:
        task.set_downstream(to_tasks)
