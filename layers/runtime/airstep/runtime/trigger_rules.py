"""Airflow's trigger rules, evaluated once every upstream of a task has finished."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule

SKIPPED, UPSTREAM_FAILED = TaskState.SKIPPED, TaskState.UPSTREAM_FAILED


class _Upstreams:
    def __init__(self, states: Iterable[TaskState]) -> None:
        counts = Counter(states)
        self.total = sum(counts.values())
        self.success = counts[TaskState.SUCCESS]
        self.failed = counts[TaskState.FAILED] + counts[TaskState.UPSTREAM_FAILED]
        self.skipped = counts[TaskState.SKIPPED]


# Each rule: None if the task runs, else the state it takes without running.
_RULES: dict[TriggerRule, Callable[[_Upstreams], TaskState | None]] = {
    TriggerRule.ALWAYS: lambda u: None,
    TriggerRule.ALL_DONE: lambda u: None,
    TriggerRule.ALL_DONE_SETUP_SUCCESS: lambda u: None,
    TriggerRule.ALL_SUCCESS: lambda u: UPSTREAM_FAILED if u.failed else SKIPPED if u.skipped else None,
    TriggerRule.ALL_FAILED: lambda u: None if u.failed == u.total else SKIPPED,
    TriggerRule.ALL_SKIPPED: lambda u: None if u.skipped == u.total else SKIPPED,
    TriggerRule.ONE_SUCCESS: lambda u: None if u.success else UPSTREAM_FAILED if u.failed == u.total else SKIPPED,
    TriggerRule.ONE_FAILED: lambda u: None if u.failed else SKIPPED,
    TriggerRule.ONE_DONE: lambda u: None if u.success or u.failed else SKIPPED,
    TriggerRule.NONE_FAILED: lambda u: UPSTREAM_FAILED if u.failed else None,
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: lambda u: UPSTREAM_FAILED if u.failed else None if u.success else SKIPPED,
    TriggerRule.NONE_SKIPPED: lambda u: SKIPPED if u.skipped else None,
}


def decide(rule: TriggerRule, upstream_states: Iterable[TaskState]) -> TaskState | None:
    """What a task does given its finished upstreams: None if it runs, else the state it takes."""
    upstreams = _Upstreams(upstream_states)
    if upstreams.total == 0:
        return None
    return _RULES[rule](upstreams)
