"""Scheduled starts are idempotent; status events in any order never move a run backwards."""

import json
from datetime import UTC, datetime

from airstep.runtime.run_starter import start_scheduled_run
from airstep.runtime.run_tracker import status_event, track
from airstep.runtime.store import RunKey
from airstep.states import RunState


def schedule_event(arn, when="2026-11-21T02:00:00Z"):
    return {
        "dag_id": "etl",
        "state_machine_arn": arn,
        "schedule": {"kind": "cron_trigger", "cron": "0 2 * * *"},
        "timezone": "UTC",
        "scheduled_time": when,
    }


def test_duplicate_schedule_delivery_starts_one_run(aws):
    store, sfn, arn = aws
    first = start_scheduled_run(schedule_event(arn), sfn, store)
    again = start_scheduled_run(schedule_event(arn), sfn, store)
    assert first["run_id"] == again["run_id"] == "scheduled__2026-11-21T02:00:00+00:00"
    assert again["execution_arn"] == first["execution_arn"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    start_scheduled_run(schedule_event(arn, "2026-11-22T02:00:00Z"), sfn, store)
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2


def detail(status, input_, start=1_700_000_000_000, stop=None, **extra):
    return {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:x",
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        "name": "x",
        "status": status,
        "input": json.dumps(input_),
        "startDate": start,
        "stopDate": stop,
        **extra,
    }


RUN_INPUT = {
    "dag_id": "etl",
    "run_id": "scheduled__2026-11-21T02:00:00+00:00",
    "logical_date": "2026-11-21T02:00:00+00:00",
}
KEY = RunKey("etl", RUN_INPUT["run_id"])


def test_out_of_order_and_duplicate_events_never_move_a_run_backwards(aws):
    store, _, _ = aws
    failed = status_event(
        detail("FAILED", RUN_INPUT, stop=1_700_000_060_000, error="DagRunFailed", cause="failed tasks: load")
    )
    running = status_event(detail("RUNNING", RUN_INPUT))
    assert track(failed, store)["tracked"]
    assert not track(running, store)["tracked"]  # late RUNNING
    assert not track(failed, store)["tracked"]  # duplicate
    record = store.get_run(KEY)
    assert (record.state, record.exec_status, record.duration) == ("failed", "FAILED", 60.0)
    assert record.error == "DagRunFailed: failed tasks: load"


def test_running_event_after_finalize_keeps_the_final_state(aws):
    store, _, _ = aws
    assert store.finish_run(KEY, RunState.SUCCESS, "2026-11-21T02:01:00+00:00")
    assert not track(status_event(detail("RUNNING", RUN_INPUT)), store)["tracked"]
    assert track(status_event(detail("SUCCEEDED", RUN_INPUT, stop=1_700_000_030_000)), store)["tracked"]
    assert store.get_run(KEY).state == "success"


def test_non_airstep_executions_are_ignored(aws):
    store, _, _ = aws
    assert not track(status_event(detail("RUNNING", {"something": "else"})), store)["tracked"]


def test_access_patterns(aws):
    store, _, _ = aws
    for day, status in ((20, "SUCCEEDED"), (21, "FAILED"), (22, "RUNNING")):
        run_input = {"dag_id": "etl", "run_id": f"scheduled__2026-11-{day}T02:00:00+00:00"}
        start = int(datetime(2026, 11, day, 2, tzinfo=UTC).timestamp() * 1000)
        track(
            status_event(detail(status, run_input, start=start, stop=None if status == "RUNNING" else start + 5000)),
            store,
        )
    newest = store.runs_of_dag("etl")
    assert [r.run_id[11:21] for r in newest] == ["2026-11-22", "2026-11-21", "2026-11-20"]
    assert store.runs_of_dag("etl", limit=1)[0].state == "running"
    assert [r.dag_id for r in store.find_runs("scheduled__2026-11-20T02:00:00+00:00")] == ["etl"]
