"""Clear and mark: which tasks a clear resets (held to Airflow 3.3's own selection, recorded by
tests/conformance/record_clear_selection.py), what a cleared instance keeps, and how a cleared run
waits for its slot while no event of its earlier execution can touch it."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airstep.contract import DagRun
from airstep.runtime.admission import admit
from airstep.runtime.clearing import ClearError, Selection, clear_run, mark_task, tasks_to_clear
from airstep.runtime.run_tracker import execution_detail, status_event, track, track_and_count
from airstep.runtime.store import RunKey, TaskInstance
from airstep.states import RunState, RunType, TaskState
from helpers import load_model

RECORDED = json.loads((Path(__file__).parents[1] / "conformance" / "airflow_clear_selection.json").read_text())
T0, T1, T2 = "2026-11-21T02:00:00+00:00", "2026-11-21T02:00:01+00:00", "2026-11-21T02:00:02+00:00"


def model_of(shape, tmp_path):
    path = tmp_path / f"{shape}.py"
    path.write_text(RECORDED["header"] + RECORDED["shapes"][shape])
    return load_model(path)[0]


@pytest.mark.parametrize(
    "case",
    RECORDED["cases"],
    ids=lambda c: f"{c['shape']}-{'+'.join(c['task_ids'])}-u{c['upstream']:d}d{c['downstream']:d}",
)
def test_a_clear_selects_the_tasks_airflow_selects(case, tmp_path):
    model = model_of(case["shape"], tmp_path)
    selection = Selection(tuple(case["task_ids"]), case["upstream"], case["downstream"])
    assert sorted(tasks_to_clear(model, selection, [])) == case["cleared"]


def test_only_failed_keeps_the_failed_and_upstream_failed_of_the_selection(tmp_path):
    model = model_of("chain", tmp_path)
    instances = [
        TaskInstance("a", -1, TaskState.SUCCESS, 1),
        TaskInstance("b", -1, TaskState.FAILED, 2),
        TaskInstance("c", -1, TaskState.UPSTREAM_FAILED, 0),
        TaskInstance("d", -1, TaskState.UPSTREAM_FAILED, 0),
    ]
    assert tasks_to_clear(model, Selection(only_failed=True), instances) == ["b", "c", "d"]
    assert tasks_to_clear(model, Selection(("c",), only_failed=True), instances) == ["c"]
    assert tasks_to_clear(model, Selection(), instances) == ["a", "b", "c", "d"]  # no task named: all of them
    with pytest.raises(ClearError, match="DAG 'chain' has no task 'x'"):
        tasks_to_clear(model, Selection(("x",)), instances)


def ended_run(store, run_id="manual__1", state=RunState.FAILED):
    run = DagRun("chain", run_id, RunType.MANUAL, None, None, None, {"rows": 3})
    store.track_execution(
        run, status="RUNNING", state=RunState.RUNNING, execution_arn="arn:1", start=T0, end=None, error=None
    )
    store.finish_run(RunKey("chain", run_id), state, T1)
    store.track_execution(run, status="FAILED", state=state, execution_arn="arn:1", start=T0, end=T1, error="x")
    return run


def test_a_cleared_instance_keeps_its_try_number_and_counts_its_retries_afresh(aws):
    store, _, _ = aws
    run = ended_run(store)
    key = RunKey("chain", run.run_id)
    for number, state in ((1, TaskState.UP_FOR_RETRY), (2, TaskState.FAILED)):
        assert store.begin_try(key, "b", T0).number == number
        store.end_try(key, "b", number, state, T0, T1, "boom", xcoms_json='{"return_value":1}')
    store.finish_unfinished(key, "c", TaskState.UPSTREAM_FAILED, T1)
    cleared = clear_run(store, store.get_run(key), ["b", "c"], T2)
    assert cleared.run == DagRun("chain", run.run_id, RunType.MANUAL, None, None, None, {"rows": 3}, clear_number=1)
    b, c = (store.get_task_instances(key, [t])[t] for t in ("b", "c"))
    assert (b.state, b.try_number, b.error, b.xcoms, b.end) == (None, 2, None, None, None)
    assert (c.state, c.try_number) == (None, 0)
    assert store.begin_try(key, "b", T2).number == 3 and store.begin_try(key, "b", T2) is not None
    assert store.begin_try(key, "c", T2).number == 1
    record = store.get_run(key)
    assert (record.state, record.clear_number, record.start_date, record.end_date) == ("queued", 1, None, None)


def test_a_clear_asks_for_an_ended_run(aws, tmp_path):
    store, _, _ = aws
    model = model_of("chain", tmp_path)
    run = DagRun("chain", "manual__2", RunType.MANUAL, None, None, None)
    store.track_execution(
        run, status="RUNNING", state=RunState.RUNNING, execution_arn="arn:2", start=T0, end=None, error=None
    )
    with pytest.raises(ClearError, match="is running: clear or mark its tasks once it has ended"):
        clear_run(store, store.get_run(RunKey("chain", "manual__2")), ["a"], T1)
    with pytest.raises(ClearError, match="is running"):
        mark_task(store, model, store.get_run(RunKey("chain", "manual__2")), "a", TaskState.SUCCESS, T1)


def test_a_mark_sets_every_instance_and_clears_what_failed_downstream(aws, tmp_path):
    store, _, _ = aws
    model = model_of("chain", tmp_path)
    run = ended_run(store)
    key = RunKey("chain", run.run_id)
    store.begin_try(key, "b", T0)
    store.end_try(key, "b", 1, TaskState.FAILED, T0, T1, "boom")
    for task_id in ("c", "d"):
        store.finish_unfinished(key, task_id, TaskState.UPSTREAM_FAILED, T1)
    marked = mark_task(store, model, store.get_run(key), "b", TaskState.SUCCESS, T2)
    assert marked.task_ids == ["c", "d"] and marked.run.clear_number == 1
    b = store.get_task_instances(key, ["b"])["b"]
    assert (b.state, b.try_number, b.end) == ("success", 1, T2)
    assert store.begin_try(key, "b", T2) is None  # marked: finished, never run


def test_a_cleared_run_waits_for_its_slot_and_its_earlier_execution_cannot_touch_it(aws):
    store, sfn, arn = aws
    first = DagRun("chain", "manual__a", RunType.MANUAL, None, None, None)
    admitted = admit(store, sfn, first, arn, limit=1)
    description = sfn.describe_execution(executionArn=admitted.execution_arn)
    old_end = status_event(execution_detail({**description, "status": "FAILED"}))
    store.finish_run(RunKey("chain", "manual__a"), RunState.FAILED, T1)
    track_and_count(old_end, store, sfn, None)
    other = admit(store, sfn, DagRun("chain", "manual__b", RunType.MANUAL, None, None, None), arn, limit=1)
    assert other.state == "running"  # the freed slot went to the next run

    cleared = clear_run(store, store.get_run(RunKey("chain", "manual__a")), ["a"], T2)
    again = admit(store, sfn, cleared.run, arn, limit=1)
    assert again.state == "queued"  # max_active_runs holds for a cleared run too
    assert not track(old_end, store)["tracked"]  # the first execution's end, delivered late
    assert track_and_count(old_end, store, sfn, None)["started"] == []  # and it frees nothing
    assert store.get_run(RunKey("chain", "manual__a")).state == "queued"

    sfn.stop_execution(executionArn=other.execution_arn)
    ended = sfn.describe_execution(executionArn=other.execution_arn)
    started = track_and_count(status_event(execution_detail({**ended, "status": "SUCCEEDED"})), store, sfn, None)
    assert started["started"] == ["manual__a"]
    record = store.get_run(RunKey("chain", "manual__a"))
    assert (record.state, record.clear_number) == ("running", 1)
    assert record.execution_arn.endswith(":manual__a__clear1")
    assert set(store.slot_holders("chain")) == {"manual__a#1"}
    execution = sfn.describe_execution(executionArn=record.execution_arn)
    assert json.loads(execution["input"])["clear_number"] == 1


def test_the_tries_before_a_clear_stay_counted_through_every_later_try(aws):
    store, _, _ = aws
    run = ended_run(store)
    key = RunKey("chain", run.run_id)
    for number in (1, 2, 3):
        store.begin_try(key, "b", T0)
        store.end_try(key, "b", number, TaskState.UP_FOR_RETRY if number < 3 else TaskState.FAILED, T0, T1, "x")
    clear_run(store, store.get_run(key), ["b"], T2)
    begun = store.begin_try(key, "b", T2)
    assert (begun.number, begun.earlier) == (4, 3)
    store.end_try(key, "b", 4, TaskState.UP_FOR_RETRY, T2, T2, "x", earlier=begun.earlier)
    again = store.begin_try(key, "b", T2)
    assert (again.number, again.earlier) == (5, 3)  # retries 2 count from the clear: try 5 is not the last


def test_a_clear_claims_the_run_first_and_one_cut_short_is_finished_by_the_next(aws):
    from airstep.runtime.clearing import resume_clear

    store, _, _ = aws
    run = ended_run(store)
    key = RunKey("chain", run.run_id)
    store.begin_try(key, "b", T0)
    store.end_try(key, "b", 1, TaskState.FAILED, T0, T1, "boom")
    record = store.get_run(key)
    claimed = dataclasses.replace(run, clear_number=1)
    assert store.claim_clear(claimed, ["b"], ["failed"], None, T2)  # then the operator's process died
    assert not store.claim_clear(claimed, ["b"], None, None, T2)  # a second operator loses the run
    with pytest.raises(ClearError, match="changed while it was being cleared"):
        clear_run(store, record, ["a", "b"], T2)  # one holding the record from before
    assert store.get_task_instances(key, ["b"])["b"].state == "failed"  # nothing reset by the losers
    waiting = store.get_run(key)
    assert (waiting.state, waiting.clearing, waiting.clearing_only) == ("queued", ("b",), ("failed",))
    resumed = resume_clear(store, waiting, T2)
    assert resumed.task_ids == ["b"] and resumed.run.clear_number == 1 and resumed.run.conf == {"rows": 3}
    assert [ti.state for ti in store.task_instances(key)] == [None]


def test_an_earlier_execution_cannot_finish_a_cleared_run(aws):
    store, _, _ = aws
    run = ended_run(store)
    key = RunKey("chain", run.run_id)
    clear_run(store, store.get_run(key), ["b"], T2)
    store.track_execution(
        dataclasses.replace(run, clear_number=1),
        status="RUNNING",
        state=RunState.RUNNING,
        execution_arn="arn:1-clear1",
        start=T2,
        end=None,
        error=None,
    )
    assert not store.finish_run(key, RunState.FAILED, T2)  # the first execution's late finalize (clear 0)
    assert store.finish_run(RunKey("chain", run.run_id, 1), RunState.SUCCESS, T2)
    assert store.get_run(key).state == "success"


def test_a_stopped_or_timed_out_execution_is_cleared_once_its_runners_are_done(aws):
    from airstep.runtime.clearing import not_yet_rerunnable
    from airstep.runtime.store import RunRecord

    _, sfn, _ = aws
    ended_at = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    record = RunRecord("chain", "r", RunState.FAILED, exec_status="TIMED_OUT", end_date=ended_at.isoformat())
    why = not_yet_rerunnable(sfn, record, ended_at + timedelta(minutes=5))
    assert why and "may still be at work until 2026-11-21T02:15:00+00:00" in why
    assert not_yet_rerunnable(sfn, record, ended_at + timedelta(minutes=16)) is None
    failed = dataclasses.replace(record, exec_status="FAILED")
    assert not_yet_rerunnable(sfn, failed, ended_at) is None  # every runner of a failed execution has ended


def test_a_cleared_backfill_run_keeps_the_backfills_limit(aws):
    store, sfn, arn = aws
    run = DagRun("chain", "backfill__1", RunType.BACKFILL, None, None, None)
    admit(store, sfn, run, arn, limit=3)
    admit(store, sfn, dataclasses.replace(run, run_id="backfill__2", clear_number=1), arn, limit=None)
    item = store.table.get({"pk": {"S": "SLOTS#chain#backfill"}, "sk": {"S": "SLOTS"}})
    assert item["limit"]["N"] == "3"
