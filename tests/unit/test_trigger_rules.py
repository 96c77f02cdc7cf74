import pytest

from airstep.runtime.trigger_rules import decide
from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule

S, F, K, U = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
RUN = None


@pytest.mark.parametrize(
    ("rule", "states", "expected"),
    [
        ("all_success", [S, S], RUN),
        ("all_success", [S, F], U),
        ("all_success", [S, U], U),
        ("all_success", [S, K], K),
        ("all_failed", [F, U], RUN),
        ("all_failed", [F, S], K),
        ("all_done", [F, K, S], RUN),
        ("always", [F], RUN),
        ("one_success", [F, S], RUN),
        ("one_success", [F, F], U),
        ("one_success", [F, K], K),
        ("one_failed", [S, F], RUN),
        ("one_failed", [S, K], K),
        ("one_done", [K, F], RUN),
        ("one_done", [K, K], K),
        ("none_failed", [S, K], RUN),
        ("none_failed", [S, U], U),
        ("none_failed_min_one_success", [S, K], RUN),
        ("none_failed_min_one_success", [K, K], K),
        ("none_failed_min_one_success", [F, S], U),
        ("none_skipped", [S, F], RUN),
        ("none_skipped", [S, K], K),
        ("all_skipped", [K, K], RUN),
        ("all_skipped", [K, S], K),
    ],
)
def test_rules(rule, states, expected):
    assert decide(TriggerRule(rule), states) == expected


def test_no_upstream_always_runs():
    assert decide(TriggerRule.ALL_FAILED, []) is RUN
