"""Airflow's trigger rules: when a task runs, given the states its upstream tasks ended in."""

from __future__ import annotations

from enum import StrEnum


class TriggerRule(StrEnum):
    """The rules of Airflow's `TriggerRule` (how each is decided: airstep.runtime.trigger_rules)."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"


# The rules that settle a task as skipped when every one of its upstreams was skipped, whatever the
# order they arrived in (the others run it): what makes a skip certain before its path is reached.
SKIPPED_WHEN_ALL_UPSTREAMS_SKIPPED = frozenset(
    {
        TriggerRule.ALL_SUCCESS,
        TriggerRule.ALL_FAILED,
        TriggerRule.ALL_DONE_MIN_ONE_SUCCESS,
        TriggerRule.ONE_SUCCESS,
        TriggerRule.ONE_FAILED,
        TriggerRule.ONE_DONE,
        TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        TriggerRule.NONE_SKIPPED,
    }
)
