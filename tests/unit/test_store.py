"""The metadata store's conditional writes, against moto's DynamoDB."""

import boto3
import pytest
from moto import mock_aws

from airstep.runtime.clients import registry
from airstep.runtime.constants import XCOM_BUCKET_ENV
from airstep.runtime.store import MetadataStore, RunKey, create_table, schema
from airstep.runtime.xcoms import INLINE_XCOM_BYTES, XComError, XComOwner, encode_xcoms
from airstep.states import RunState, TaskState

RUN = RunKey("d", "manual__1")


@pytest.fixture
def store():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "t")
        yield MetadataStore("t", client=client)


def test_tries_count_up_and_a_late_try_cannot_overwrite(store):
    t1, t3 = "2026-11-21T02:00:01+00:00", "2026-11-21T02:00:03+00:00"
    assert store.begin_try(RUN, "a", t1).number == 1
    assert store.end_try(RUN, "a", 1, TaskState.UP_FOR_RETRY, t1, "2026-11-21T02:00:02+00:00", "boom")
    assert store.get_task_instances(RUN, ["a"])["a"].error == "boom"
    assert store.begin_try(RUN, "a", t3).number == 2
    assert not store.end_try(RUN, "a", 1, TaskState.SUCCESS, t1, "2026-11-21T02:00:04+00:00")  # the late first try
    assert store.end_try(RUN, "a", 2, TaskState.SUCCESS, t3, "2026-11-21T02:00:05+00:00")
    (ti,) = store.task_instances(RUN)
    assert (ti.state, ti.try_number, ti.error, ti.start, ti.duration) == ("success", 2, None, t3, 2.0)


def test_finished_task_is_never_restarted_or_refinished(store):
    t1 = "2026-11-21T02:00:01+00:00"
    store.begin_try(RUN, "a", t1)
    store.end_try(RUN, "a", 1, TaskState.FAILED, t1, "2026-11-21T02:00:02+00:00", "bad")
    assert store.begin_try(RUN, "a", "2026-11-21T02:00:03+00:00") is None
    assert not store.finish_unfinished(RUN, "a", TaskState.SKIPPED, "2026-11-21T02:00:04+00:00")
    assert store.get_task_instances(RUN, ["a"])["a"].state == "failed"


def test_finished_instances_are_read_once_unfinished_ones_every_time(store):
    t1 = "2026-11-21T02:00:01+00:00"
    store.begin_try(RUN, "done", t1)
    store.end_try(RUN, "done", 1, TaskState.SUCCESS, t1, "2026-11-21T02:00:02+00:00", xcoms_json='{"return_value":7}')
    store.begin_try(RUN, "busy", t1)
    assert set(store.get_task_instances(RUN, ["done", "busy"])) == {"done", "busy"}
    for sk in ("TI#done#-1", "TI#busy#-1"):  # gone from the table behind the store's back
        store.table.delete({"pk": {"S": RUN.pk}, "sk": {"S": sk}})
    again = store.get_task_instances(RUN, ["done", "busy"])
    assert set(again) == {"done"} and again["done"].xcom() == 7


def test_run_finishes_once(store):
    assert store.finish_run(RUN, RunState.FAILED, "2026-11-21T02:00:01+00:00")
    assert not store.finish_run(RUN, RunState.SUCCESS, "2026-11-21T02:00:02+00:00")
    assert store.get_run(RUN).state == "failed"


def test_gate_opens_whatever_the_order(store):
    store.gate_arrive(RUN, "c", "a")
    status = store.gate_register(RUN, "c", "token-1", ["a", "b"])
    assert not status.open
    assert store.gate_arrive(RUN, "c", "b").open
    assert store.gate_arrive(RUN, "c", "b").open  # a duplicate arrival changes nothing


def _end_with_xcoms(store, task_id, xcoms):
    store.begin_try(RUN, task_id, "2026-11-21T02:00:00+00:00")
    store.end_try(
        RUN, task_id, 1, TaskState.SUCCESS, "2026-11-21T02:00:00+00:00", "2026-11-21T02:00:01+00:00", xcoms_json=xcoms
    )


def _owner(task_id):
    return XComOwner(RUN.dag_id, RUN.run_id, task_id, 1)


def test_xcom_round_trip(store):
    _end_with_xcoms(store, "a", encode_xcoms(_owner("a"), {"return_value": {"rows": [1, 2]}, "pushed": "x"}))
    assert store.get_xcoms(RUN, ["a", "missing"]) == {"a": {"rows": [1, 2]}}
    assert store.get_xcoms(RUN, ["a"], key="pushed") == {"a": "x"}
    assert store.get_xcoms(RUN, ["a"], key="other") == {}
    assert encode_xcoms(_owner("b"), {}) is None
    with pytest.raises(XComError, match="not JSON-serialisable"):
        encode_xcoms(_owner("b"), {"return_value": {1, 2}})


def test_a_large_xcom_goes_to_the_bucket_and_the_record_keeps_a_reference(store, monkeypatch):
    registry.reset()  # this moto's S3 client
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="xcoms")
    monkeypatch.setenv(XCOM_BUCKET_ENV, "xcoms")
    value = "x" * INLINE_XCOM_BYTES
    stored = encode_xcoms(_owner("big"), {"return_value": value})
    assert stored == '"s3://xcoms/xcoms/d/manual__1/big/-1/1.json"'
    _end_with_xcoms(store, "big", stored)
    assert store.get_xcoms(RUN, ["big"]) == {"big": value}
    assert len(encode_xcoms(_owner("small"), {"return_value": "x" * (INLINE_XCOM_BYTES - 20)})) < INLINE_XCOM_BYTES

    s3.delete_object(Bucket="xcoms", Key="xcoms/d/manual__1/big/-1/1.json")  # expired
    store.finished = type(store.finished)()
    assert store.get_xcoms(RUN, ["big"]) == {"big": value}  # this process read the object already
    registry.reset()  # a fresh process: nothing read before is remembered
    with pytest.raises(XComError, match=r"s3://xcoms/xcoms/d/manual__1/big/-1/1.json cannot be read \(NoSuchKey\)"):
        store.get_xcoms(RUN, ["big"])
    registry.reset()


def test_a_large_xcom_without_a_bucket_is_refused_with_its_size(monkeypatch):
    monkeypatch.delenv(XCOM_BUCKET_ENV, raising=False)
    with pytest.raises(XComError, match=f"are 40,019 bytes as JSON, more than the {INLINE_XCOM_BYTES:,}"):
        encode_xcoms(_owner("b"), {"return_value": "x" * 40_000})


def test_a_record_from_before_keyed_xcoms_reads_as_its_return_value(store):
    store.begin_try(RUN, "old", "2026-11-21T02:00:00+00:00")
    item = {"pk": {"S": RUN.pk}, "sk": {"S": "TI#old#-1"}}
    store.table.update(
        item,
        "SET #s = :s, fin = :f, xcom = :x",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": "success"}, ":f": {"BOOL": True}, ":x": {"S": "[1, 2]"}},
    )
    assert store.get_xcoms(RUN, ["old"]) == {"old": [1, 2]}


def test_run_data_expires_after_the_retention_and_deployments_do_not(store):
    import time

    from airstep.contract import DagRun
    from airstep.runtime.store import DagRecord
    from airstep.states import RunType

    store.track_execution(
        DagRun("d", "manual__1", RunType.MANUAL, None, None, None),
        status="RUNNING",
        state=RunState.RUNNING,
        execution_arn="arn",
        start="2026-11-21T02:00:00+00:00",
        end=None,
        error=None,
    )
    store.begin_try(RUN, "a", "2026-11-21T02:00:00+00:00")
    store.begin_try(RUN, "b", "2026-11-21T02:00:00+00:00")
    store.end_try(RUN, "b", 1, TaskState.SUCCESS, "2026-11-21T02:00:00+00:00", "2026-11-21T02:00:01+00:00")
    store.finish_unfinished(RUN, "c", TaskState.SKIPPED, "2026-11-21T02:00:01+00:00")
    store.gate_register(RUN, "e", "token", ["a"])
    store.put_dag(DagRecord("d", "f.py", "v", None, "UTC", "arn"))
    items = {item["sk"]["S"]: item for page in store.table.scan() for item in page}
    now = time.time()
    for sk in ("RUN", "TI#a#-1", "TI#b#-1", "TI#c#-1", "GATE#e"):
        expires = int(items[sk]["expires_at"]["N"])
        assert 364 * 86_400 < expires - now <= 365 * 86_400, sk
    assert "expires_at" not in items["DAG"]


def test_a_finished_mapped_task_is_read_once_per_process_and_an_unfinished_one_every_time(store):
    t1, t2 = "2026-11-21T02:00:01+00:00", "2026-11-21T02:00:02+00:00"
    store.set_map_length(RUN, "m", 2)
    for index in (0, 1):
        store.begin_try(RUN, "m", t1, index)
    store.end_try(RUN, "m", 1, TaskState.SUCCESS, t1, t2, map_index=0, xcoms_json='{"return_value":0}')
    assert [ti.state for ti in store.get_mapped(RUN, "m")[1]] == ["success", "running"]  # not kept
    store.end_try(RUN, "m", 1, TaskState.SUCCESS, t1, t2, map_index=1, xcoms_json='{"return_value":1}')
    length, instances = store.get_mapped(RUN, "m")
    assert (length, [ti.xcom() for ti in instances]) == (2, [0, 1])
    for index in (0, 1):  # finished instances never change: the second read is the process's memory
        store.table.client.delete_item(TableName="t", Key={"pk": {"S": RUN.pk}, "sk": {"S": schema.ti_sk("m", index)}})
    assert store.task_instances(RUN) == []
    assert [ti.xcom() for ti in store.get_mapped(RUN, "m")[1]] == [0, 1]


def test_each_ended_try_joins_the_instances_history_which_a_clear_keeps(store):
    times = [f"2026-11-21T02:00:0{i}+00:00" for i in range(8)]
    store.begin_try(RUN, "a", times[0])
    assert store.await_poke(RUN, "a", 1, TaskState.UP_FOR_RESCHEDULE, 1, until=times[5])  # a time sensor's wait
    assert store.resume_poke(RUN, "a") is not None
    store.end_try(RUN, "a", 1, TaskState.UP_FOR_RETRY, times[0], times[1], "boom")
    second = store.begin_try(RUN, "a", times[2])
    assert len(second.tries) == 1  # what its end writes back, with its own
    store.end_try(
        RUN, "a", 2, TaskState.SUCCESS, times[2], times[3], xcoms_json='{"return_value":1}', history=second.tries
    )
    store.clear_instances(RUN, ["a"])
    third = store.begin_try(RUN, "a", times[4])
    (ti,) = store.task_instances(RUN, with_tries=True)
    assert (ti.state, ti.try_number, ti.start) == (TaskState.RUNNING, 3, times[4])
    assert [(t.try_number, t.state, t.start, t.end) for t in ti.tries] == [
        (1, TaskState.UP_FOR_RETRY, times[0], times[1]),
        (2, TaskState.SUCCESS, times[2], times[3]),
    ]
    store.end_try(RUN, "a", 3, TaskState.FAILED, times[4], times[5], "bad", history=third.tries)
    item = store.table.get({"pk": {"S": RUN.pk}, "sk": {"S": schema.ti_sk("a", -1)}})
    assert not {"pokes", "until", "xcoms"} & set(item)  # what the sensor's wait and try 2 left is gone
    assert item["error"]["S"] == "bad" and len(item["tries"]["L"]) == 3
    assert store.task_instances(RUN)[0].tries == ()  # read without them unless asked


def test_an_instances_history_keeps_its_first_hundred_tries(store):
    from airstep.runtime.store.task_instances import MAX_KEPT_TRIES

    t1, t2 = "2026-11-21T02:00:01+00:00", "2026-11-21T02:00:02+00:00"
    store.begin_try(RUN, "a", t1)
    item_key = {"pk": {"S": RUN.pk}, "sk": {"S": schema.ti_sk("a", -1)}}
    store.table.update(item_key, "SET try_number = :n", ExpressionAttributeValues={":n": {"N": str(MAX_KEPT_TRIES)}})
    assert store.end_try(RUN, "a", MAX_KEPT_TRIES, TaskState.UP_FOR_RETRY, t1, t2)
    begun = store.begin_try(RUN, "a", t2)
    assert store.end_try(RUN, "a", MAX_KEPT_TRIES + 1, TaskState.SUCCESS, t2, t2, history=begun.tries)
    (ti,) = store.task_instances(RUN, with_tries=True)
    assert (ti.state, ti.try_number) == (TaskState.SUCCESS, MAX_KEPT_TRIES + 1)
    assert [t.try_number for t in ti.tries] == [MAX_KEPT_TRIES]


def test_a_try_waiting_for_its_call_is_taken_up_once_and_not_after_it_is_taken_back(store):
    t1, t2 = "2026-11-21T02:00:01+00:00", "2026-11-21T02:00:03+00:00"
    store.begin_try(RUN, "a", t1)
    assert store.resume_poke(RUN, "a", calling=True) is None  # begun, not waiting for a call yet
    assert store.await_poke(RUN, "a", 1, TaskState.RUNNING, 0, calling='{"Message":"m"}')
    waiting = store.resume_poke(RUN, "a", calling=True)
    assert (waiting.try_number, waiting.calling) == (1, '{"Message":"m"}')
    assert store.end_try(RUN, "a", 1, TaskState.UP_FOR_RETRY, t1, t2, "SNS.NotFoundException")
    assert store.resume_poke(RUN, "a", calling=True) is None  # ended: nothing waits
    assert store.begin_try(RUN, "a", t2).number == 2
    assert store.await_poke(RUN, "a", 2, TaskState.RUNNING, 0, calling="{}")
    assert store.abandon_try(RUN, "a", 2)  # taken back: try 1 is up for retry again, and waits for nothing
    assert store.resume_poke(RUN, "a", calling=True) is None
    (ti,) = store.task_instances(RUN)
    assert (ti.state, ti.try_number) == ("up_for_retry", 1)
