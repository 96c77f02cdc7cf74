"""Airflow's trigger rules, decided as Airflow 3.3 decides them.

Airflow's scheduler looks at the upstream states that have *arrived* so far, on every pass. Each rule
has a condition under which the task runs, and one under which it is settled without running
(skipped or upstream_failed) - checked first, and acted on as soon as it holds, before the other
upstreams end (airflow/ti_deps/deps/trigger_rule_dep.py). `all_success` is the one rule where this
makes the order matter: the first non-success to arrive decides, so an upstream skipped before a
sibling fails skips the task, while a failure first (or both at once) makes it upstream_failed.

airstep decides once every upstream has ended, by replaying their arrivals in the order they ended
(their recorded end times; equal times arrive together, like one scheduler pass): the answer is the
one Airflow gives for that order. A task settled without running ends just after the arrival that
settled it, so its own downstream sees it in the same order Airflow's next pass would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule

SKIPPED, UPSTREAM_FAILED = TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
# A settled task ends this long after the arrival that settled it: after it, never with it.
SETTLING_STEP = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Arrived:
    """Counts of the upstream states arrived so far, of `total` upstreams."""

    total: int
    counts: Counter[TaskState] = field(default_factory=Counter)

    @property
    def success(self) -> int:
        return self.counts[TaskState.SUCCESS]

    @property
    def skipped(self) -> int:
        return self.counts[TaskState.SKIPPED]

    @property
    def failed(self) -> int:
        return self.counts[TaskState.FAILED]

    @property
    def upstream_failed(self) -> int:
        return self.counts[TaskState.UPSTREAM_FAILED]

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total

    @property
    def any_failed(self) -> bool:
        return bool(self.failed or self.upstream_failed)

    def plus(self, state: TaskState) -> Arrived:
        return Arrived(self.total, self.counts + Counter({state: 1}))


def _settles_as(rule: TriggerRule, a: Arrived) -> TaskState | None:
    """The state Airflow gives the task without running it, given what has arrived; None: not (yet)."""
    if rule is TriggerRule.ALL_SUCCESS:
        return UPSTREAM_FAILED if a.any_failed else SKIPPED if a.skipped else None
    if rule is TriggerRule.ALL_FAILED:
        return SKIPPED if a.success or a.skipped else None
    if rule is TriggerRule.ONE_SUCCESS:
        if not a.all_done:
            return None
        return SKIPPED if a.done == a.skipped else UPSTREAM_FAILED if not a.success else None
    if rule is TriggerRule.ONE_FAILED:
        return SKIPPED if a.all_done and not a.any_failed else None
    if rule is TriggerRule.ONE_DONE:
        return SKIPPED if a.all_done and not (a.failed or a.success) else None
    if rule is TriggerRule.NONE_FAILED:
        return UPSTREAM_FAILED if a.any_failed else None
    if rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
        if a.any_failed:
            return UPSTREAM_FAILED
        if a.skipped == a.total:
            return SKIPPED
        return UPSTREAM_FAILED if a.all_done and not a.success else None
    if rule is TriggerRule.NONE_SKIPPED:
        return SKIPPED if a.skipped else None
    if rule is TriggerRule.ALL_SKIPPED:
        return SKIPPED if a.success or a.any_failed else None
    if rule is TriggerRule.ALL_DONE_MIN_ONE_SUCCESS:
        if a.skipped:  # skipped upstreams are not "done" for this rule
            return SKIPPED
        return UPSTREAM_FAILED if a.all_done and not a.success else None
    return None  # always, all_done, all_done_setup_success: never settled without running (no setup tasks yet)


_RUNS_WHEN: dict[TriggerRule, Callable[[Arrived], bool]] = {
    TriggerRule.ALWAYS: lambda a: True,
    TriggerRule.ALL_SUCCESS: lambda a: a.success == a.total,
    TriggerRule.ALL_FAILED: lambda a: a.failed + a.upstream_failed == a.total,
    TriggerRule.ALL_DONE: lambda a: a.all_done,
    TriggerRule.ALL_DONE_SETUP_SUCCESS: lambda a: a.all_done,
    TriggerRule.ALL_DONE_MIN_ONE_SUCCESS: lambda a: a.all_done and not a.skipped and a.success > 0,
    TriggerRule.ALL_SKIPPED: lambda a: a.skipped == a.total,
    TriggerRule.ONE_SUCCESS: lambda a: a.success > 0,
    TriggerRule.ONE_FAILED: lambda a: a.any_failed,
    TriggerRule.ONE_DONE: lambda a: a.success + a.failed > 0,
    TriggerRule.NONE_FAILED: lambda a: a.success + a.skipped == a.total,
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: lambda a: a.success + a.skipped == a.total and a.success > 0,
    TriggerRule.NONE_SKIPPED: lambda a: a.all_done and not a.skipped,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the task runs; if not, the state it takes and when (ISO time) it was settled."""

    runs: bool
    state: TaskState | None = None
    settled_at: str | None = None


RUN = Decision(runs=True)


def verdict(rule: TriggerRule, arrived: Arrived) -> Decision | None:
    """Airflow's answer on one pass, given what has arrived: run, settle, or None (wait for more)."""
    settled = _settles_as(rule, arrived)
    if settled is not None:
        return Decision(runs=False, state=settled)
    return RUN if _RUNS_WHEN[rule](arrived) else None


def decide_on(rule: TriggerRule, total: int, arrivals: Iterable[Iterable[TaskState]]) -> tuple[int, Decision]:
    """Replay upstream arrivals a group (one scheduler pass) at a time: the index of the group that
    decided (-1: decided before any arrived), and the decision. Every upstream must be in some group."""
    arrived = Arrived(total)
    if total == 0 or rule is TriggerRule.ALWAYS:
        return -1, RUN
    for index, group in enumerate(arrivals):
        for state in group:
            arrived = arrived.plus(state)
        decision = verdict(rule, arrived)
        if decision is not None:
            return index, decision
    raise ValueError(f"trigger rule {rule.value} undecided with every upstream arrived: {arrived}")


def decide(rule: TriggerRule, upstreams: Iterable[tuple[TaskState, str | None]]) -> Decision:
    """What a task does, given each upstream's final state and its end time (ISO; None: unknown, last)."""
    ordered = sorted(upstreams, key=lambda u: (u[1] is None, datetime.fromisoformat(u[1]) if u[1] else None))
    groups = [(end, [state for state, _ in group]) for end, group in groupby(ordered, key=lambda u: u[1])]
    index, decision = decide_on(rule, len(ordered), (states for _, states in groups))
    if decision.runs:
        return decision
    settled_by = groups[index][0]
    settled_at = None if settled_by is None else _after(settled_by)
    return Decision(runs=False, state=decision.state, settled_at=settled_at)


def _after(iso: str) -> str:
    return (datetime.fromisoformat(iso) + SETTLING_STEP).isoformat(timespec="microseconds")
