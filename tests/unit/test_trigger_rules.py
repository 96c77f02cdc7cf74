"""Trigger rules decided as Airflow decides them: on the upstream states arrived so far, replayed in
the order the upstreams ended (the conformance suite checks the rules against Airflow itself)."""

import pytest

from airstep.runtime.trigger_rules import RUN, Decision, Role, decide
from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule

S, F, K, U = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
T1, T2, T3 = "2026-01-01T00:00:01.000000+00:00", "2026-01-01T00:00:02.000000+00:00", "2026-01-01T00:00:03.000000+00:00"


def after(iso: str) -> str:
    return iso.replace(".000000", ".000001")


@pytest.mark.parametrize(
    ("rule", "upstreams", "expected"),
    [
        # all_success: the first non-success to arrive decides; failure wins a tie
        ("all_success", [(S, T1), (S, T2)], RUN),
        ("all_success", [(K, T1), (F, T2)], Decision(False, K, after(T1))),
        ("all_success", [(F, T1), (K, T2)], Decision(False, U, after(T1))),
        ("all_success", [(K, T2), (F, T2)], Decision(False, U, after(T2))),
        ("all_success", [(S, T1), (U, T3)], Decision(False, U, after(T3))),
        # one_success: no success once all arrived is upstream_failed, unless every upstream skipped
        ("one_success", [(F, T1), (K, T2)], Decision(False, U, after(T2))),
        ("one_success", [(K, T1), (K, T2)], Decision(False, K, after(T2))),
        ("one_success", [(F, T1), (S, T2)], RUN),
        # one_done counts success and failed, not upstream_failed
        ("one_done", [(U, T1), (U, T2)], Decision(False, K, after(T2))),
        ("one_done", [(U, T1), (F, T2)], RUN),
        ("one_failed", [(S, T1), (U, T2)], RUN),
        ("one_failed", [(S, T1), (K, T2)], Decision(False, K, after(T2))),
        ("all_failed", [(F, T1), (U, T2)], RUN),
        ("all_failed", [(S, T1), (F, T2)], Decision(False, K, after(T1))),
        ("none_failed", [(S, T1), (K, T2)], RUN),
        ("none_failed", [(K, T1), (U, T2)], Decision(False, U, after(T2))),
        ("none_failed_min_one_success", [(K, T1), (K, T2)], Decision(False, K, after(T2))),
        ("none_failed_min_one_success", [(S, T1), (F, T2)], Decision(False, U, after(T2))),
        ("none_skipped", [(F, T1), (S, T2)], RUN),
        ("none_skipped", [(K, T1), (S, T2)], Decision(False, K, after(T1))),
        ("all_skipped", [(K, T1), (K, T2)], RUN),
        ("all_skipped", [(F, T1), (K, T2)], Decision(False, K, after(T1))),
        ("all_done", [(F, T1), (K, T2)], RUN),
        ("all_done_setup_success", [(U, T1)], RUN),
        ("always", [(U, T1)], RUN),
        # all_done_min_one_success: a skip settles it at once; no success once all arrived: upstream_failed
        ("all_done_min_one_success", [(F, T1), (S, T2)], RUN),
        ("all_done_min_one_success", [(S, T1), (K, T2), (F, T3)], Decision(False, K, after(T2))),
        ("all_done_min_one_success", [(F, T1), (U, T2)], Decision(False, U, after(T2))),
    ],
)
def test_rules(rule, upstreams, expected):
    assert decide(TriggerRule(rule), upstreams) == expected


def test_upstreams_arrive_in_the_order_they_ended_not_the_order_given():
    assert decide(TriggerRule.ALL_SUCCESS, [(F, T3), (K, T1)]) == Decision(False, K, after(T1))


def test_an_upstream_with_no_recorded_end_arrives_last():
    assert decide(TriggerRule.ALL_SUCCESS, [(F, None), (K, T1)]) == Decision(False, K, after(T1))
    assert decide(TriggerRule.ALL_SUCCESS, [(F, None)]) == Decision(False, U, None)


def test_no_upstream_always_runs():
    assert decide(TriggerRule.ALL_FAILED, []) is RUN


SETUP, INDIRECT = Role.SETUP, Role.INDIRECT_SETUP


@pytest.mark.parametrize(
    ("upstreams", "expected"),
    [
        # trigger_rule_dep.py, ALL_DONE_SETUP_SUCCESS: runs once all are done if any setup succeeded
        ([(F, T1), (S, T2, SETUP)], RUN),
        ([(S, T1), (F, T2, SETUP), (S, T1, SETUP)], RUN),
        ([(S, T1), (F, T2, SETUP)], Decision(False, U, after(T2))),  # no setup succeeded
        ([(K, T1), (K, T2, SETUP)], Decision(False, K, after(T2))),  # every setup skipped
        ([(F, T1), (U, T2)], RUN),  # no setup upstream: all_done
    ],
)
def test_teardown_rule(upstreams, expected):
    assert decide(TriggerRule.ALL_DONE_SETUP_SUCCESS, upstreams) == expected


def test_an_indirect_setup_is_checked_before_the_rule():
    """_evaluate_setup_constraint: a failed relevant setup makes even an all_done task
    upstream_failed; a skipped one skips it; both settle it as soon as the setup arrives."""
    assert decide(TriggerRule.ALL_DONE, [(U, T2), (F, T1, INDIRECT)]) == Decision(False, U, after(T1))
    assert decide(TriggerRule.ALL_DONE, [(S, T2), (K, T1, INDIRECT)]) == Decision(False, K, after(T1))
    assert decide(TriggerRule.ALL_DONE, [(F, T2), (S, T1, INDIRECT)]) == RUN


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_the_rules_that_skip_when_every_upstream_was_skipped(rule):
    """The table the compiler and runner use to call a skip certain agrees with decide(), in any order."""
    from airstep.trigger_rule import SKIPPED_WHEN_ALL_UPSTREAMS_SKIPPED

    for arrivals in ([(K, T1)], [(K, T1), (K, T2)], [(K, T2), (K, T1), (K, T3)]):
        decision = decide(rule, arrivals)
        assert (decision.state is K) is (rule in SKIPPED_WHEN_ALL_UPSTREAMS_SKIPPED), arrivals
