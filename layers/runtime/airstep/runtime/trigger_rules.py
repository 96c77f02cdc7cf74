"""Airflow's trigger rules, evaluated once every upstream of a task has finished."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from airstep.runtime.states import TaskState

RUN = "run"


def decide(rule: str, upstream_states: Iterable[str]) -> str:
    """What a task does given its finished upstreams: RUN, or the state it takes without running."""
    counts = Counter(upstream_states)
    total = sum(counts.values())
    success = counts[TaskState.SUCCESS]
    failed = counts[TaskState.FAILED] + counts[TaskState.UPSTREAM_FAILED]
    skipped = counts[TaskState.SKIPPED]
    skip, upstream_failed = TaskState.SKIPPED.value, TaskState.UPSTREAM_FAILED.value
    if total == 0 or rule in ("always", "all_done"):
        return RUN
    if rule == "all_success":
        return upstream_failed if failed else skip if skipped else RUN
    if rule == "all_failed":
        return RUN if failed == total else skip
    if rule == "all_skipped":
        return RUN if skipped == total else skip
    if rule == "one_success":
        return RUN if success else upstream_failed if failed == total else skip
    if rule == "one_failed":
        return RUN if failed else skip
    if rule == "one_done":
        return RUN if success or failed else skip
    if rule == "none_failed":
        return upstream_failed if failed else RUN
    if rule == "none_failed_min_one_success":
        return upstream_failed if failed else RUN if success else skip
    if rule == "none_skipped":
        return skip if skipped else RUN
    if rule == "all_done_setup_success":
        return RUN
    raise ValueError(f"unknown trigger rule {rule!r}")
