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


def chain_linear(*elements: DependencyMixin | Sequence[DependencyMixin]) -> None:
    """Airflow's chain_linear(): every task of each element runs after every task of the previous one."""
    from airstep.errors import DagDefinitionError

    if not elements:
        raise DagDefinitionError("chain_linear() got no tasks; nothing to link")
    if any(isinstance(element, Label) for element in elements):
        raise DagDefinitionError("chain_linear() does not take labels (as in Airflow); use >> with Label")
    if len(elements) < 2:
        raise DagDefinitionError("chain_linear() set no dependencies: did you forget to expand a list with `*`?")
    for left, right in zip(elements, elements[1:]):
        for up in _flatten(left):
            up >> right


class Label(DependencyMixin):
    """Airflow's edge label: `a >> Label("no errors") >> b` makes b downstream of a, and names the edge
    (shown by `airstep graph`)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._upstream: list[DependencyMixin] = []
        self._downstream: list[DependencyMixin] = []

    @property
    def roots(self) -> list[BaseOperator]:
        return [root for node in self._downstream for root in node.roots]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [leaf for node in self._upstream for leaf in node.leaves]

    def set_upstream(self, other: DependencyMixin | Sequence[DependencyMixin]) -> None:
        added = list(_flatten(other))
        self._upstream += added
        self._connect(added, self._downstream)

    def set_downstream(self, other: DependencyMixin | Sequence[DependencyMixin]) -> None:
        added = list(_flatten(other))
        self._downstream += added
        self._connect(self._upstream, added)

    def _connect(self, upstream: list[DependencyMixin], downstream: list[DependencyMixin]) -> None:
        for up in upstream:
            for down in downstream:
                down.set_upstream(up)
                for leaf in up.leaves:
                    for root in down.roots:
                        root.dag.edge_labels[(leaf.task_id, root.task_id)] = self.label


def cross_downstream(
    from_tasks: Sequence[DependencyMixin], to_tasks: DependencyMixin | Sequence[DependencyMixin]
) -> None:
    """Every task in `from_tasks` becomes upstream of every task in `to_tasks`."""
    for task in from_tasks:
        task.set_downstream(to_tasks)
