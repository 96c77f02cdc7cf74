"""Metering a run's usage and pricing it: the pieces that moto cannot exercise (a Distributed Map's
children listed and read, as AWS keeps them), and the price table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airstep.runtime.store import RunKey
from airstep.runtime.usage import MAX_CHILD_HISTORIES, LambdaUsage, Transitions, count_transitions
from airstep.states import TaskState
from airstep_cli.prices import describe, price


class RecordedHistories:
    """Step Functions' answers for an execution with one Distributed Map run of `children` children,
    each of which entered 2 states and retried once; pages of `page` items, as AWS pages them."""

    def __init__(self, children: int, page: int = 2) -> None:
        self.children = [f"child-{i}" for i in range(children)]
        self.page = page
        self.histories_read: list[str] = []
        self.pages_listed = 0

    def _paged(self, items: list[Any], key: str, token: str | None) -> dict[str, Any]:
        start = int(token or 0)
        answer: dict[str, Any] = {key: items[start : start + self.page]}
        if start + self.page < len(items):
            answer["nextToken"] = str(start + self.page)
        return answer

    def list_map_runs(self, executionArn: str, nextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        return self._paged([{"mapRunArn": "map-run"}], "mapRuns", nextToken)

    def describe_state_machine_for_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        processor = {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "t",
            "States": {"t": {"Type": "Task", "Next": "done"}, "done": {"Type": "Succeed"}},
        }
        machine = {"StartAt": "m", "States": {"m": {"Type": "Map", "ItemProcessor": processor, "End": True}}}
        return {"definition": json.dumps(machine)}

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:  # noqa: N803
        return {"executionCounts": {"total": len(self.children)}}

    def list_executions(self, mapRunArn: str, maxResults: int, nextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        assert mapRunArn == "map-run"
        self.pages_listed += 1
        return self._paged([{"executionArn": c} for c in self.children], "executions", nextToken)

    def get_execution_history(
        self,
        executionArn: str,
        maxResults: int,
        includeExecutionData: bool,
        nextToken: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        assert includeExecutionData is False  # the events' inputs and outputs are not read
        if nextToken is None:
            self.histories_read.append(executionArn)
        if executionArn == "parent":  # a Pass state, then the Map state: 2 transitions
            events = [(1, 0, "ExecutionStarted"), (2, 1, "PassStateEntered"), (3, 2, "MapStateEntered")]
        else:  # a task state whose Lambda failed once and was retried: 2 transitions, then a Succeed
            events = [
                (1, 0, "ExecutionStarted"),
                (2, 1, "TaskStateEntered"),
                (3, 2, "TaskScheduled"),
                (4, 3, "TaskFailed"),
                (5, 4, "TaskScheduled"),
                (6, 5, "TaskSucceeded"),
                (7, 6, "SucceedStateEntered"),
            ]
        listed = [{"id": i, "previousEventId": p, "type": t} for i, p, t in events]
        return self._paged(listed, "events", nextToken)


def test_a_distributed_maps_children_are_each_counted_from_their_own_history():
    sfn = RecordedHistories(children=5)
    assert count_transitions(sfn, "parent") == Transitions(2 + 5 * 3)
    assert sorted(sfn.histories_read) == ["child-0", "child-1", "child-2", "child-3", "child-4", "parent"]


def test_past_the_children_it_reads_the_rest_are_estimated_from_them():
    sfn = RecordedHistories(children=MAX_CHILD_HISTORIES + 5_000, page=100)
    assert count_transitions(sfn, "parent") == Transitions(2 + (MAX_CHILD_HISTORIES + 5_000) * 3, estimated=True)
    assert len(sfn.histories_read) == MAX_CHILD_HISTORIES + 1
    assert sfn.pages_listed == MAX_CHILD_HISTORIES // 100  # the children read are listed, no more


def test_past_its_time_budget_the_children_not_read_are_estimated():
    sfn = RecordedHistories(children=50)
    # with no child read, each counts as its processor's path when nothing fails: 2 states
    assert count_transitions(sfn, "parent", budget_seconds=0) == Transitions(2 + 50 * 2, estimated=True)
    assert sfn.histories_read == ["parent"]


def test_a_requests_duration_is_billed_in_whole_milliseconds_at_its_memory():
    usage = LambdaUsage()
    usage.add(0.2, 256)  # rounds up to 1 ms
    usage.add(1000.0, 1024)
    assert (usage.requests, usage.mb_ms) == (2, 256 + 1_024_000)
    assert usage.gb_seconds == pytest.approx(1.00025)
    assert not usage.add_reported(None) and not usage.add_reported({"ms": 3})
    assert usage.add_reported({"ms": 2.5, "memory_mb": 512}) and usage.mb_ms == 256 + 1_024_000 + 3 * 512


def test_a_runs_usage_is_what_its_tries_and_usage_items_carry_and_each_executions_transitions_count_once(aws):
    store, _, _ = aws
    from airstep.contract import DagRun
    from airstep.states import RunState, RunType, TaskState

    key = RunKey("d", "manual__1")
    store.add_lambda_usage(key, LambdaUsage(2, 2048), shard=3)  # a runner may end before the run is tracked
    assert store.get_run(key) is None  # its usage makes no run record
    run = DagRun("d", "manual__1", RunType.MANUAL, None, None, None)
    common = {"execution_arn": "arn-1", "start": "2026-01-01T00:00:00+00:00", "error": None}
    assert store.track_execution(run, status="RUNNING", state=RunState.RUNNING, end=None, **common)
    store.add_lambda_usage(key, LambdaUsage(1, 1024), shard=11)  # (shard 11 is shard 3 again)
    # a task's try carries its invocations' usage on its record: a retry's end carries both tries'
    t0, t1 = "2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"
    store.begin_try(key, "t", t0)
    store.end_try(key, "t", 1, TaskState.UP_FOR_RETRY, t0, t1, usage=LambdaUsage(2, 100))
    retry = store.begin_try(key, "t", t1)
    assert retry.usage == LambdaUsage(2, 100)
    store.end_try(key, "t", 2, TaskState.SUCCESS, t1, t1, usage=LambdaUsage(4, 300), history=retry.tries)
    end = "2026-01-01T00:01:00+00:00"
    assert store.track_execution(run, status="SUCCEEDED", state=RunState.SUCCESS, end=end, **common)
    assert store.add_transitions(key, "arn-1", Transitions(7))
    assert not store.add_transitions(key, "arn-1", Transitions(7))  # a redelivered event adds nothing
    assert store.add_transitions(key, "arn-2", Transitions(5, estimated=True))  # the run's clear: its next execution
    usage = store.get_run(key).usage(store.lambda_usage(key))
    assert usage == {
        "transitions": 12,
        "transitions_estimated": True,
        "lambda_requests": 3 + 4,
        "lambda_gb_seconds": round((3072 + 300) / 1024 / 1000, 6),
    }


def test_prices_follow_the_region_and_say_which_table_they_used():
    usage = {"transitions": 1000, "transitions_estimated": True, "lambda_requests": 1_000_000, "lambda_gb_seconds": 0}
    assert price(usage, "eu-west-3").total_usd == pytest.approx(0.0297 + 0.20)
    unknown = price(usage, "mars-north-1")
    assert (unknown.priced_as, unknown.total_usd) == ("us-east-1", pytest.approx(0.025 + 0.20))
    assert describe(usage, "mars-north-1").startswith("$0.225000 (~1,000 transitions; 1,000,000 Lambda requests")
    assert "mars-north-1 (priced as us-east-1)" in describe(usage, "mars-north-1")
    pending = {**usage, "transitions": None}
    assert price(pending, "us-east-1").transitions_usd is None and "transitions not counted yet" in describe(
        pending, None
    )


def test_a_gates_usage_stays_the_runs_when_a_clear_forgets_the_gates(aws):
    store, _, _ = aws
    key = RunKey("d", "manual__1")
    store.gate_register(key, "t", "token", ["u"], LambdaUsage(1, 256))
    store.finish_unfinished(key, "skipped", TaskState.SKIPPED, "2026-01-01T00:00:00+00:00", usage=LambdaUsage(1, 64))
    assert store.lambda_usage(key) == LambdaUsage(2, 320)
    store.delete_gates(key)
    assert store.lambda_usage(key) == LambdaUsage(2, 320)
