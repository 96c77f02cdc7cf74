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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from itertools import groupby

from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule

SKIPPED, UPSTREAM_FAILED = TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
# A settled task ends this long after the arrival that settled it: after it, never with it.
SETTLING_STEP = timedelta(microseconds=1)


class Role(Enum):
    """What an upstream is to the task deciding: a direct upstream (`WORK`), a direct upstream that is
    a setup task (`SETUP`; counted by `all_done_setup_success`), or a relevant setup that is not a
    direct upstream (`INDIRECT_SETUP`: Airflow's setup constraint, checked before the trigger rule)."""

    WORK = "work"
    SETUP = "setup"
    INDIRECT_SETUP = "indirect_setup"


@dataclass(frozen=True, slots=True)
class Arrived:
    """Counts of the upstream states arrived so far, of `total` direct upstreams (and of
    `indirect_total` indirect setups)."""

    total: int
    counts: Counter[TaskState] = field(default_factory=Counter)
    setup_counts: Counter[TaskState] = field(default_factory=Counter)  # direct upstreams that are setups
    setups: int = 0  # direct upstreams that are setups, arrived or not
    indirect_total: int = 0
    indirect: Counter[TaskState] = field(default_factory=Counter)

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

    def plus(self, state: TaskState, role: Role = Role.WORK) -> Arrived:
        one = Counter({state: 1})
        if role is Role.INDIRECT_SETUP:
            return replace(self, indirect=self.indirect + one)
        if role is Role.SETUP:
            return replace(self, counts=self.counts + one, setup_counts=self.setup_counts + one)
        return replace(self, counts=self.counts + one)


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
    if rule is TriggerRule.ALL_DONE_SETUP_SUCCESS and a.all_done and a.setups:
        if a.setup_counts[TaskState.SKIPPED] >= a.setups:
            return SKIPPED
        return UPSTREAM_FAILED if not a.setup_counts[TaskState.SUCCESS] else None
    return None  # always, all_done: never settled without running


_RUNS_WHEN: dict[TriggerRule, Callable[[Arrived], bool]] = {
    TriggerRule.ALWAYS: lambda a: True,
    TriggerRule.ALL_SUCCESS: lambda a: a.success == a.total,
    TriggerRule.ALL_FAILED: lambda a: a.failed + a.upstream_failed == a.total,
    TriggerRule.ALL_DONE: lambda a: a.all_done,
    TriggerRule.ALL_DONE_SETUP_SUCCESS: lambda a: (
        a.all_done and (not a.setups or a.setup_counts[TaskState.SUCCESS] > 0)
    ),
    TriggerRule.ALL_DONE_MIN_ONE_SUCCESS: lambda a: a.all_done and not a.skipped and a.success > 0,
    TriggerRule.ALL_SKIPPED: lambda a: a.skipped == a.total,
    TriggerRule.ONE_SUCCESS: lambda a: a.success > 0,
    TriggerRule.ONE_FAILED: lambda a: a.any_failed,
    TriggerRule.ONE_DONE: lambda a: a.success + a.failed > 0,
    TriggerRule.NONE_FAILED: lambda a: a.success + a.skipped == a.total,
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: lambda a: a.success + a.skipped == a.total and a.success > 0,
    TriggerRule.NONE_SKIPPED: lambda a: a.all_done and not a.skipped,
}


class Undecided(ValueError):
    """The upstreams arrived so far do not decide the rule."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the task runs; if not, the state it takes and when (ISO time) it was settled."""

    runs: bool
    state: TaskState | None = None
    settled_at: str | None = None


RUN = Decision(runs=True)


def verdict(rule: TriggerRule, arrived: Arrived) -> Decision | None:
    """Airflow's answer on one pass, given what has arrived: run, settle, or None (wait for more).
    Indirect setups come first: one failed settles the task upstream_failed, one skipped skips it,
    and until all have succeeded the task cannot run (its own rule may still settle it)."""
    if arrived.indirect[TaskState.FAILED] or arrived.indirect[TaskState.UPSTREAM_FAILED]:
        return Decision(runs=False, state=UPSTREAM_FAILED)
    if arrived.indirect[SKIPPED]:
        return Decision(runs=False, state=SKIPPED)
    settled = _settles_as(rule, arrived)
    if settled is not None:
        return Decision(runs=False, state=settled)
    setups_ready = arrived.indirect[TaskState.SUCCESS] >= arrived.indirect_total
    return RUN if setups_ready and _RUNS_WHEN[rule](arrived) else None


Arrival = TaskState | tuple[TaskState, Role]


def decide_on(
    rule: TriggerRule, total: int, arrivals: Iterable[Iterable[Arrival]], *, setups: int = 0, indirect_setups: int = 0
) -> tuple[int, Decision]:
    """Replay upstream arrivals a group (one scheduler pass) at a time: the index of the group that
    decided (-1: decided before any arrived), and the decision. Every upstream must be in some group;
    an arrival is a state (a direct upstream) or (state, Role)."""
    arrived = Arrived(total, setups=setups, indirect_total=indirect_setups)
    if total == 0 or rule is TriggerRule.ALWAYS:
        return -1, RUN
    for index, group in enumerate(arrivals):
        for item in group:
            arrived = arrived.plus(*item) if isinstance(item, tuple) else arrived.plus(item)
        decision = verdict(rule, arrived)
        if decision is not None:
            return index, decision
    raise Undecided(f"trigger rule {rule.value} undecided with the upstreams arrived: {arrived}")


def decide(
    rule: TriggerRule,
    upstreams: Iterable[tuple[TaskState, str | None] | tuple[TaskState, str | None, Role]],
    pending: int = 0,
) -> Decision | None:
    """What a task does, given each ended upstream's final state, its end time (ISO; None: unknown,
    last) and, optionally, its Role (default: a direct upstream that is not a setup); `pending`
    direct upstreams (not setups) have not ended yet. None: undecided until more of them end."""
    entries = [(u[0], u[1], u[2] if len(u) > 2 else Role.WORK) for u in upstreams]  # type: ignore[misc]
    ordered = sorted(entries, key=lambda u: (u[1] is None, datetime.fromisoformat(u[1]) if u[1] else None))
    groups = [(end, [(state, role) for state, _, role in group]) for end, group in groupby(ordered, key=lambda u: u[1])]
    roles = Counter(role for _, _, role in entries)
    try:
        index, decision = decide_on(
            rule,
            roles[Role.WORK] + roles[Role.SETUP] + pending,
            (arrivals for _, arrivals in groups),
            setups=roles[Role.SETUP],
            indirect_setups=roles[Role.INDIRECT_SETUP],
        )
    except Undecided:
        if pending:
            return None
        raise
    if decision.runs:
        return decision
    settled_by = groups[index][0]
    settled_at = None if settled_by is None else _after(settled_by)
    return Decision(runs=False, state=decision.state, settled_at=settled_at)


def _after(iso: str) -> str:
    return (datetime.fromisoformat(iso) + SETTLING_STEP).isoformat(timespec="microseconds")
