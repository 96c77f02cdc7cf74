"""The divergences from Airflow that the conformance suite was built to end, one test each. Airflow's
answers are the recorded ones (airflow_outcomes.jsonl); the assertions on them say what Airflow does."""

from __future__ import annotations

import pytest

from conformance.airstep_runs import PLANS, run_specs
from conformance.dag_specs import NAMED
from conformance.recorded import AIRFLOW


@pytest.fixture(scope="module", params=PLANS)
def airstep(request):
    outcomes = run_specs(list(NAMED.values()), gate_every_task=request.param == "gated")
    return {dag_id: outcome.answer() for dag_id, outcome in outcomes.items()}


def states(answer: dict) -> dict[str, str]:
    return {task_id: ti["state"] for task_id, ti in answer["tasks"].items()}


def test_one_success_whose_upstreams_failed_and_skipped_is_upstream_failed(airstep):
    name = "one_success_with_a_failed_and_a_skipped_upstream"
    assert states(AIRFLOW[name])["joins"] == "upstream_failed" and AIRFLOW[name]["run_state"] == "failed"
    assert airstep[name] == AIRFLOW[name]


def test_all_success_is_skipped_when_a_skip_arrives_before_a_failure(airstep):
    name = "all_success_with_a_skip_that_arrives_before_a_failure"
    assert states(AIRFLOW[name]) == {"skips": "skipped", "fails_after": "failed", "joins": "skipped"}
    assert airstep[name] == AIRFLOW[name]


def test_one_done_whose_upstreams_all_ended_upstream_failed_is_skipped(airstep):
    name = "one_done_with_every_upstream_upstream_failed"
    assert states(AIRFLOW[name])["joins"] == "skipped"
    assert airstep[name] == AIRFLOW[name]


def test_all_done_min_one_success_is_supported_on_roots_and_joins(airstep):
    name = "all_done_min_one_success"
    want = {"runs": "success", "skipped": "skipped", "upstream_failed": "upstream_failed", "root": "success"}
    assert {t: s for t, s in states(AIRFLOW[name]).items() if t in want} == want
    assert airstep[name] == AIRFLOW[name]
