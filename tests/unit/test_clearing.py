"""Clear and mark: which tasks a clear resets (held to Airflow 3.3's own selection, recorded by
tests/conformance/record_clear_selection.py), what a cleared instance keeps, and how a cleared run
waits for its slot while no event of its earlier execution can touch it."""

import json
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
