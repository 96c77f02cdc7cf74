"""Setup and teardown tasks: `as_setup()`, `as_teardown(setups=...)`, `@setup`/`@teardown`, and the
context-manager scopes `with teardown_task:` / `with setup_task >> teardown_task:`.

A port of Airflow 3.3's SetupTeardownContext (airflow/sdk/definitions/_internal/setup_teardown.py):
while a setup or teardown is used as a context manager, every task created inside it is recorded;
on exit, the recorded work tasks without upstreams get the setup upstream of them, those without
downstreams get the teardown downstream, and nested scopes chain setup to setup and teardown to
teardown - the same edges Airflow draws, pinned against Airflow's own DagBag in the conformance files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from airstep.errors import DagDefinitionError, caller_location

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator

Scope = Any  # an operator in a `with`, or the list of setups (teardowns) found for one


def _link(receiving: Scope, new: Scope, upstream: bool = True) -> None:
    """`new` (one or several) set upstream (or downstream) of `receiving`."""
    for task in new if isinstance(new, (list, tuple)) else [new]:
        if upstream:
            task.set_upstream(receiving)
        else:
            task.set_downstream(receiving)


class _Slot:
    """One thing the context tracks for the innermost `with` (its setup, its teardown, the teardowns
    found after that setup, the setups found before that teardown), and what enclosing ones held."""

    def __init__(self) -> None:
        self.value: Scope = []
        self.enclosing: list[Scope] = []

    def push(self, value: Scope) -> None:
        if self.value and self.value != value:
            self.enclosing.append(self.value)
        self.value = value

    def pop(self, upstream: bool) -> Scope:
        """Leave the innermost `with`: the enclosing value comes back, linked to the one left (Airflow's
        chaining of nested scopes: setup before setup, teardown after teardown)."""
        left = self.value
        self.value = self.enclosing.pop() if self.enclosing else []
        if self.value and left:
            _link(left, self.value, upstream)
        return left


class _SetupTeardownContext:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.active = False
        self.context_map: dict[Any, list[BaseOperator]] = {}
        self.setup = _Slot()
        self.teardown = _Slot()
        self.teardown_downstream_of_setup = _Slot()
        self.setup_upstream_of_teardown = _Slot()

    # -- entering a scope -------------------------------------------------------------------------
    def push(self, operator: BaseOperator) -> None:
        if operator.is_teardown:
            self.teardown.push(operator)
            self.setup_upstream_of_teardown.push(_nearest(operator, lambda t: t.is_setup, upstream=True))
        elif operator.is_setup:
            self.setup.push(operator)
            self.teardown_downstream_of_setup.push(_nearest(operator, lambda t: t.is_teardown, upstream=False))
        self.active = True

    def add_task(self, task: BaseOperator) -> None:
        """A task constructed inside a scope (Airflow records every one; setups and teardowns are
        left out when the scope closes, once they are marked)."""
        if task.is_setup or task.is_teardown:
            return
        for scope in (self.setup.value, self.teardown.value):
            if scope:
                self.context_map.setdefault(scope, []).append(task)

    # -- leaving it -------------------------------------------------------------------------------
    def exit(self) -> None:
        setup, teardown = self.setup.value, self.teardown.value
        if setup:
            work = [t for t in self.context_map.get(setup, []) if not t.is_teardown and not t.is_setup]
            if work:
                roots = [t for t in work if not t.upstream_task_ids]
                if roots:
                    _link(roots, setup, upstream=False)
                else:
                    setup.set_downstream(work[0])
                leaves: Scope = [t for t in work if not t.downstream_task_ids] or work[-1]
                _link(teardown or leaves, self.teardown_downstream_of_setup.value)
        if teardown:
            work = [t for t in self.context_map.get(teardown, []) if not t.is_teardown and not t.is_setup]
            if work:
                leaves = [t for t in work if not t.downstream_task_ids]
                if leaves:
                    _link(leaves, teardown)
                else:
                    teardown.set_upstream(work[-1])
                roots: Scope = [t for t in work if not t.upstream_task_ids] or work[0]
                _link(setup or roots, self.setup_upstream_of_teardown.value, upstream=False)
        for closed in (self.setup.pop(upstream=False), self.teardown.pop(upstream=True)):
            if closed:
                self.context_map.pop(closed, None)
        self.teardown_downstream_of_setup.pop(upstream=True)
        self.setup_upstream_of_teardown.pop(upstream=False)
        self.active = False


def _nearest(operator: BaseOperator, wanted: Callable[[BaseOperator], bool], upstream: bool) -> list[BaseOperator]:
    """Airflow's search for the teardowns of a setup (or setups of a teardown): the first layer of
    relatives, walking both directions from the operator's own downstream (upstream) list."""
    tasks = operator.get_direct_relatives(upstream=upstream)
    seen: set[str] = set()
    while tasks:
        found = [t for t in tasks if wanted(t)]
        if found:
            return found
        seen.update(t.task_id for t in tasks)
        layer = {
            x.task_id: x
            for t in tasks
            for x in [*t.get_direct_relatives(), *t.get_direct_relatives(upstream=True)]
            if x is not operator and x.task_id not in seen
        }
        tasks = list(layer.values())
    return []


context = _SetupTeardownContext()


class ScopeManager:
    """`with task:` for a setup or teardown task (an operator or a TaskFlow output)."""

    def __init__(self, operator: BaseOperator) -> None:
        if not (operator.is_setup or operator.is_teardown):
            raise DagDefinitionError("Only setup/teardown tasks can be used as context managers.", caller_location())
        self.operator = operator

    def __enter__(self) -> _SetupTeardownContext:
        context.push(self.operator)
        return context

    def __exit__(self, *exc: object) -> None:
        context.exit()


def mark_teardown(
    operators: Iterable[BaseOperator], setups: Any = None, on_failure_fail_dagrun: bool | None = None
) -> None:
    """What `as_teardown` does to each operator: Airflow's trigger rule for teardowns, and every
    setup given marked as one and set upstream of it."""
    from airstep.trigger_rule import TriggerRule

    for operator in operators:
        operator.is_teardown = True
        operator.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
        if on_failure_fail_dagrun is not None:
            operator.on_failure_fail_dagrun = on_failure_fail_dagrun
        if setups is not None:
            for setup in setups if isinstance(setups, (list, tuple, set)) else [setups]:
                for setup_operator in setup.roots:
                    setup_operator.is_setup = True
                setup >> operator
