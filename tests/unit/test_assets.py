"""Assets: held to what Airflow 3.3 makes of the same input (tests/conformance/airflow_assets.json,
recorded by record_assets.py with Airflow's own Asset and AssetEvaluator), and the store's event,
queue and claim, which make one run per set of events however often an event is delivered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airstep.runtime import assets
from airstep.runtime.store.assets import AssetEvent, Consumer, bucket_source, queue_source
from airstep.sdk.assets import Asset, AssetAll, AssetAny, TriggeringAssetEvents
from airstep.sdk.schedule import parse_schedule
from airstep.states import RunType

RECORDED = json.loads((Path(__file__).parents[1] / "conformance" / "airflow_assets.json").read_text())


@pytest.mark.parametrize("case", RECORDED["uris"], ids=lambda c: json.dumps(c["arguments"]))
def test_an_asset_is_named_and_normalised_as_airflow_does(case):
    if "error" in case:
        with pytest.raises((ValueError, TypeError), match=case["error"]):
            Asset(**case["arguments"])
        return
    asset = Asset(**case["arguments"])
    assert (asset.name, asset.uri) == (case["name"], case["uri"])


def _built(condition):
    if isinstance(condition, str):
        return Asset(condition)
    kind, parts = condition
    return (AssetAll if kind == "all" else AssetAny)(*(_built(p) for p in parts))


def test_conditions_hold_exactly_when_airflows_evaluator_says():
    cases = RECORDED["conditions"]
    assert len(cases) > 500 and {c["holds"] for c in cases} == {True, False}
    wrong = [
        c for c in cases if assets.evaluate(_built(c["condition"]).to_condition(), set(c["updated"])) is not c["holds"]
    ]
    assert wrong == []


def test_schedule_accepts_the_ways_airflow_writes_an_asset_condition():
    a, b, c = Asset("a"), Asset("b"), Asset("c")
    location = None
    listed = parse_schedule([a, b], location)
    assert listed.assets == {"all": [{"asset": "a", "uri": "a"}, {"asset": "b", "uri": "b"}]}
    assert parse_schedule(a, location).assets == {"asset": "a", "uri": "a"}
    mixed = parse_schedule((a & b) | c, location)
    assert mixed.describe() == "AssetAny(AssetAll(Asset('a'), Asset('b')), Asset('c'))"
    assert not mixed.timed and parse_schedule("@daily", location).timed


# -- the store: events, queues, claims (moto's DynamoDB) ------------------------------------------------


def event(name, at, task="t"):
    return AssetEvent(name, name, at, {"dag_id": "producer", "run_id": "r", "task_id": task, "map_index": -1})


def test_an_event_delivered_twice_is_recorded_and_queued_once(aws):
    store, _, _ = aws
    consumer = Consumer("consumer", {"asset": "a", "uri": "a"})
    store.register_consumer("a", consumer)
    first = event("a", "2026-01-01T00:00:00+00:00")
    assert assets.record(store, first) == ["consumer"]
    assert assets.record(store, first) == ["consumer"]  # evaluated again (its first delivery may have stopped)
    run = assets.triggered_run(store, consumer)
    assert run is not None and run.run_type is RunType.ASSET_TRIGGERED
    assert run.run_id.startswith("asset_triggered__")
    assert (run.logical_date, run.data_interval_start, run.data_interval_end) == (None, None, None)
    assert [e["timestamp"] for e in run.triggering_asset_events] == ["2026-01-01T00:00:00+00:00"]  # once
    assert assets.triggered_run(store, consumer) is None  # consumed


def test_asset_all_waits_for_every_asset_and_consumes_the_events_since_the_last_run(aws):
    store, _, _ = aws
    consumer = Consumer("both", AssetAll(Asset("a"), Asset("b")).to_condition())
    for name in ("a", "b"):
        store.register_consumer(name, consumer)
    assets.record(store, event("a", "2026-01-01T00:00:00+00:00"))
    assets.record(store, event("a", "2026-01-01T01:00:00+00:00", task="again"))
    assert assets.triggered_run(store, consumer) is None  # b not yet
    assets.record(store, event("b", "2026-01-01T02:00:00+00:00"))
    run = assets.triggered_run(store, consumer)
    assert [(e["asset"], e["timestamp"]) for e in run.triggering_asset_events] == [
        ("a", "2026-01-01T00:00:00+00:00"),
        ("a", "2026-01-01T01:00:00+00:00"),
        ("b", "2026-01-01T02:00:00+00:00"),
    ]
    assets.record(store, event("b", "2026-01-01T03:00:00+00:00", task="b2"))
    assert assets.triggered_run(store, consumer) is None  # a again first
    assets.record(store, event("a", "2026-01-01T04:00:00+00:00", task="a3"))
    later = assets.triggered_run(store, consumer)
    assert [e["timestamp"] for e in later.triggering_asset_events] == [  # only those since the last run
        "2026-01-01T03:00:00+00:00",
        "2026-01-01T04:00:00+00:00",
    ]


def test_events_are_consumed_in_the_order_they_were_recorded_whatever_their_clocks(aws):
    """A producer whose task ended earlier may record its event later: it is consumed by the next
    run, once, and no event is consumed twice."""
    store, _, _ = aws
    consumer = Consumer("consumer", {"asset": "a", "uri": "a"})
    store.register_consumer("a", consumer)
    assets.record(store, event("a", "2026-01-01T00:02:00+00:00", task="late_clock"))
    first = assets.triggered_run(store, consumer)
    assets.record(store, event("a", "2026-01-01T00:01:00+00:00", task="slow_writer"))
    second = assets.triggered_run(store, consumer)
    assert [e["source"]["task_id"] for e in first.triggering_asset_events] == ["late_clock"]
    assert [e["source"]["task_id"] for e in second.triggering_asset_events] == ["slow_writer"]
    assert first.run_id != second.run_id


def test_a_dag_registered_later_consumes_only_what_was_queued_for_it(aws):
    store, _, _ = aws
    consumer = Consumer("late", {"asset": "a", "uri": "a"})
    assets.record(store, event("a", "2026-01-01T00:00:00+00:00"))  # before the consumer: not queued
    store.register_consumer("a", consumer)
    assert assets.triggered_run(store, consumer) is None
    assets.record(store, event("a", "2026-01-01T02:00:00+00:00", task="after"))
    run = assets.triggered_run(store, consumer)
    assert [e["source"]["task_id"] for e in run.triggering_asset_events] == ["after"]
    store.unregister_consumer("a", "late")  # it stops naming the asset: what was queued goes too
    assets.record(store, event("a", "2026-01-01T03:00:00+00:00", task="gone"))
    assert store.queued_assets("late") == {}


def test_of_two_evaluators_one_makes_the_run_and_an_event_meanwhile_is_kept(aws):
    store, _, _ = aws
    consumer = Consumer("consumer", {"asset": "a", "uri": "a"})
    store.register_consumer("a", consumer)
    assets.record(store, event("a", "2026-01-01T00:00:00+00:00"))
    queued = store.queued_assets("consumer")
    assets.record(store, event("a", "2026-01-01T00:05:00+00:00", task="meanwhile"))
    assert not store.claim_asset_queue("consumer", queued, [])  # an event arrived since it was read
    queued = store.queued_assets("consumer")
    assert store.claim_asset_queue("consumer", queued, [])
    assert not store.claim_asset_queue("consumer", queued, [])  # taken already


def test_a_task_reads_its_runs_events_by_asset():
    events = TriggeringAssetEvents([event("a", "2026-01-01T00:00:00+00:00").to_dict()])
    (reference,) = events[Asset("a")]
    assert (reference.source_dag_id, reference.source_task_id, reference.timestamp.year) == ("producer", "t", 2026)
    assert list(events) == [Asset("a")] and events[Asset("b")] == []
    assert events[Asset("a", "s3://elsewhere/a")] == [reference]  # known by name, as airstep keys assets
    with pytest.raises(TypeError):
        events["a"]


# -- s3:// assets: S3 object events (EventBridge) ----------------------------------------------------


def s3_event(key, sequencer="01", bucket="lake"):
    detail = {"bucket": {"name": bucket}, "object": {"key": key, "size": 3, "etag": "e", "sequencer": sequencer}}
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "id": "x",
        "time": "2026-11-21T06:00:00Z",
        "detail": detail,
    }


@pytest.mark.parametrize(
    ("uri", "key", "covered"),
    [
        ("s3://lake/orders", "orders", True),  # the object itself
        ("s3://lake/orders", "orders/2026/part-0.csv", True),  # an object under it: a folder is one asset
        ("s3://lake/orders/", "orders/a.csv", True),  # written as a folder (Airflow drops the slash)
        ("s3://lake/orders", "orders_old/a.csv", False),  # only at a "/" boundary
        ("s3://lake/orders/a.csv", "orders/a.csv.tmp", False),
        ("s3://lake", "anything/at/all", True),  # the whole bucket
        ("s3://other/orders", "orders/a.csv", False),  # another bucket
        ("s3://lake/my%20file.csv", "my file.csv", True),  # a URI's path is percent-decoded, as S3 keys are
        ("file:///lake/orders", "orders/a.csv", False),
    ],
)
def test_an_object_updates_the_s3_asset_it_is_at_or_under(uri, key, covered):
    from airstep.runtime.asset_events import covers

    assert covers(Asset(uri).uri, "lake", key) is covered


def test_an_object_event_is_parsed_as_eventbridge_sends_it():
    from airstep.runtime.asset_events import ObjectCreated

    created = ObjectCreated.from_event(s3_event("in/a+b%2Bc%3D1.csv"))  # form-encoded, as S3 sends keys
    assert (created.bucket, created.key, created.time) == ("lake", "in/a b+c=1.csv", "2026-11-21T06:00:00+00:00")
    assert created.facts == {"size": 3, "etag": "e"}
    with pytest.raises(ValueError, match="not an S3 Object Created event"):
        ObjectCreated.from_event({**s3_event("k"), "detail-type": "Object Deleted"})


def test_an_object_event_updates_each_watched_asset_once_and_a_redelivery_nothing(aws):
    from airstep.runtime.asset_events import ObjectCreated, record_object

    store, _, _ = aws
    orders, everything = Asset("s3://lake/orders"), Asset("lake", "s3://lake")
    assets.subscribe(store, "daily", AssetAll(orders, everything).to_condition(), None)
    assets.subscribe(store, "audit", everything.to_condition(), None)
    first = record_object(store, ObjectCreated.from_event(s3_event("orders/1.csv")))
    assert first == {
        "object": "s3://lake/orders/1.csv",
        "assets": ["lake", "s3://lake/orders"],
        "consumers": ["audit", "daily"],
    }
    record_object(store, ObjectCreated.from_event(s3_event("orders/1.csv")))  # EventBridge delivered it again
    assert [e.source for e in store.latest_asset_events("s3://lake/orders", 5)] == [
        {"bucket": "lake", "key": "orders/1.csv", "sequencer": "01"}
    ]
    run = assets.triggered_run(store, Consumer("daily", AssetAll(orders, everything).to_condition()))
    assert run is not None and [e["extra"] for e in run.triggering_asset_events] == [{"size": 3, "etag": "e"}] * 2
    assert record_object(store, ObjectCreated.from_event(s3_event("orders/1.csv", bucket="elsewhere")))["assets"] == []


def test_a_dag_that_stops_naming_an_s3_asset_no_longer_hears_of_its_objects(aws):
    store, _, _ = aws
    before = Asset("orders", "s3://lake/orders").to_condition()
    assets.subscribe(store, "daily", before, None)
    assert [w.uri for w in store.watched(bucket_source("lake"))] == ["s3://lake/orders"]
    moved = Asset("orders", "s3://warehouse/orders").to_condition()  # the same name, another bucket
    assets.subscribe(store, "daily", moved, before)
    assert store.watched(bucket_source("lake")) == [] and [
        w.dag_id for w in store.watched(bucket_source("warehouse"))
    ] == ["daily"]
    assets.subscribe(store, "daily", None, moved)  # the DAG's file is deleted
    assert store.watched(bucket_source("warehouse")) == [] and store.consumers("orders") == []


def test_the_reconciler_asks_again_only_for_a_condition_held_past_its_grace(aws):
    """A consumer whose start-run failed every attempt: its queue holds what makes a run; one
    waiting for another asset of an AssetAll, or paused, is not asked for."""
    import dataclasses
    from datetime import datetime

    from airstep.model import DagModel
    from airstep.sdk.dag import DAG
    from airstep.sdk.operators import EmptyOperator
    from airstep_compiler import DagSource
    from airstep_compiler.deploy import dag_record

    store, _, arn = aws
    for dag_id, schedule in (("both", AssetAll(Asset("a"), Asset("b"))), ("either", Asset("a") | Asset("b"))):
        with DAG(dag_id, schedule=schedule, start_date=datetime(2026, 1, 1)) as dag:
            EmptyOperator(task_id="t")
        model = DagModel.from_dag(dag)
        store.put_dag(dag_record(model, DagSource(f"s3://b/dags/{dag_id}.py", "v1"), arn, None))
        assets.subscribe(store, dag_id, model.schedule.assets, None)
    assets.record(store, event("a", "2026-01-01T00:00:00+00:00"))
    assert assets.overdue_consumers(store, queued_before="2000-01-01T00:00:00+00:00") == []  # not waited yet
    assert assets.overdue_consumers(store, queued_before="9999-01-01T00:00:00+00:00") == ["either"]
    store.put_dag(dataclasses.replace(store.get_dag("either"), paused=True))
    assert assets.overdue_consumers(store, queued_before="9999-01-01T00:00:00+00:00") == []


# -- assets watched over SQS: AssetWatcher(MessageQueueTrigger) and the queue's messages ---------------

INBOX_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/orders-inbox"
INBOX_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders-inbox"


def watched_inbox(name="inbox", url=INBOX_URL):
    from airstep.sdk.assets import AssetWatcher
    from airstep.sdk.triggers import MessageQueueTrigger

    return Asset(name, watchers=[AssetWatcher("inbox_watcher", MessageQueueTrigger(scheme="sqs", sqs_queue=url))])


def test_an_asset_watcher_takes_the_message_queue_trigger_as_airflow_writes_it():
    from airstep.sdk.triggers import MessageQueueTrigger

    assert watched_inbox().to_condition() == {
        "asset": "inbox",
        "uri": "inbox",
        "watchers": [{"name": "inbox_watcher", "queue": INBOX_URL}],
    }
    older = MessageQueueTrigger(queue=INBOX_URL)  # the deprecated form: the queue's URL as `queue`
    polling = MessageQueueTrigger(scheme="sqs", sqs_queue=INBOX_URL, aws_conn_id="aws_default", max_messages=10)
    assert older.sqs_queue == polling.sqs_queue == INBOX_URL
    assert Asset("inbox") == watched_inbox()  # watchers are not part of what an asset is


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({}, "Either `queue` or `scheme` parameter must be provided"),
        ({"scheme": "kafka", "topics": ["t"]}, "scheme 'kafka' is not recognized"),
        ({"scheme": "sqs"}, "needs sqs_queue="),
        ({"queue": "https://example.com/queue"}, "queue 'https://example.com/queue' is not recognized"),
        (
            {"scheme": "sqs", "sqs_queue": INBOX_URL, "message_filtering": "literal"},
            "message_filtering=.* not supported",
        ),
        ({"scheme": "sqs", "sqs_queue": INBOX_URL, "delete_message_on_reception": False}, "is deleted from the queue"),
        ({"scheme": "sqs", "sqs_queue": INBOX_URL, "polling": 1}, "unexpected keyword argument 'polling'"),
    ],
)
def test_a_message_queue_trigger_airstep_cannot_serve_is_refused_saying_why(arguments, error):
    from airstep.sdk.triggers import MessageQueueTrigger

    with pytest.raises((ValueError, TypeError), match=error):
        MessageQueueTrigger(**arguments)


def test_an_asset_watcher_needs_an_event_trigger_as_in_airflow():
    from airstep.sdk.assets import AssetWatcher

    with pytest.raises(ValueError, match="Asset watcher trigger must inherit BaseEventTrigger"):
        AssetWatcher("w", object())
    with pytest.raises(TypeError, match="Asset watchers must be AssetWatcher objects"):
        Asset("inbox", watchers=["w"])


def sqs_record(body, message_id="m-1", queue=INBOX_ARN, attributes=None):
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795392000000", "SenderId": "AID"},
        "messageAttributes": attributes or {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue,
        "awsRegion": "eu-west-1",
    }


def test_a_message_is_an_event_whose_extra_is_what_airflows_triggerer_records():
    from airstep.runtime.asset_events import message_event

    kind = {"stringValue": "new", "binaryValue": None, "stringListValues": [], "dataType": "String"}
    event = message_event("inbox", "inbox", sqs_record('{"order": 1}', attributes={"kind": kind}))
    assert event.timestamp == "2026-11-23T00:00:00+00:00"  # when the message was sent
    assert event.source == {"queue": INBOX_ARN, "message_id": "m-1"}
    assert event.extra == {
        "from_trigger": True,
        "payload": {
            "status": "success",
            # as SqsSensorTrigger's ReceiveMessage gives it: no attributes asked for
            "message_batch": [
                {"MessageId": "m-1", "ReceiptHandle": "handle-m-1", "MD5OfBody": "0" * 32, "Body": '{"order": 1}'}
            ],
        },
    }


@pytest.mark.parametrize(
    ("url", "arn"),
    [
        (INBOX_URL, INBOX_ARN),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo", "arn:aws:sqs:us-east-1:123456789012:jobs.fifo"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "arn:aws-cn:sqs:cn-north-1:123456789012:q"),
        ("https://sqs.us-gov-west-1.amazonaws.com/123456789012/q", "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q"),
    ],
)
def test_a_queue_url_names_the_arn_its_messages_come_from(url, arn):
    from airstep.runtime.store.assets import queue_arn
    from airstep.sdk.triggers import MessageQueueTrigger

    assert queue_arn(MessageQueueTrigger(queue=url).sqs_queue) == arn


def test_each_message_updates_the_watching_assets_once_and_a_redelivery_nothing(aws):
    from airstep.runtime.asset_events import record_messages

    store, _, _ = aws
    assets.subscribe(store, "orders", watched_inbox().to_condition(), None)
    batch = [sqs_record("one", "m-1"), sqs_record("two", "m-2")]
    assert record_messages(store, batch) == {"batchItemFailures": []}
    assert record_messages(store, batch[:1]) == {"batchItemFailures": []}  # SQS delivered m-1 again
    events = store.latest_asset_events("inbox", 5)
    assert sorted(e.source["message_id"] for e in events) == ["m-1", "m-2"]
    run = assets.triggered_run(store, Consumer("orders", watched_inbox().to_condition()))
    assert run is not None
    bodies = [m["Body"] for e in run.triggering_asset_events for m in e["extra"]["payload"]["message_batch"]]
    assert sorted(bodies) == ["one", "two"]


def test_a_message_that_cannot_be_recorded_stays_on_its_queue_and_the_others_do_not(aws):
    from airstep.runtime.asset_events import MAX_MESSAGE_BYTES, record_messages

    store, _, _ = aws
    assets.subscribe(store, "orders", watched_inbox().to_condition(), None)
    too_large = sqs_record("x" * (MAX_MESSAGE_BYTES + 1), "big")
    unwatched = sqs_record("lost?", "other", queue=INBOX_ARN + "-other")  # a mapping that outlived its watchers
    result = record_messages(store, [too_large, sqs_record("fine", "ok"), unwatched])
    assert result == {"batchItemFailures": [{"itemIdentifier": "big"}, {"itemIdentifier": "other"}]}
    assert [e.source["message_id"] for e in store.latest_asset_events("inbox", 5)] == ["ok"]


def test_on_a_fifo_queue_what_follows_a_message_not_recorded_waits_behind_it(aws):
    from airstep.runtime.asset_events import MAX_MESSAGE_BYTES, record_messages

    store, _, _ = aws
    fifo = INBOX_URL + ".fifo"
    assets.subscribe(store, "orders", watched_inbox(url=fifo).to_condition(), None)
    batch = [
        sqs_record(body, name, queue=INBOX_ARN + ".fifo")
        for body, name in (("1", "a"), ("x" * MAX_MESSAGE_BYTES, "b"), ("3", "c"))
    ]
    assert record_messages(store, batch) == {"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}
    assert [e.source["message_id"] for e in store.latest_asset_events("inbox", 5)] == ["a"]


def test_a_dag_that_stops_watching_a_queue_no_longer_hears_of_its_messages(aws):
    store, _, _ = aws
    watching = watched_inbox().to_condition()
    assets.subscribe(store, "orders", watching, None)
    assets.subscribe(store, "audit", watched_inbox().to_condition(), None)
    moved = watched_inbox(url=INBOX_URL + "-v2").to_condition()
    assets.subscribe(store, "orders", moved, watching)
    assert [w.dag_id for w in store.watched(queue_source(INBOX_ARN))] == ["audit"]
    assert [w.dag_id for w in store.watched(queue_source(INBOX_ARN + "-v2"))] == ["orders"]
    assets.subscribe(store, "orders", None, moved)  # its file is deleted
    assert store.watched(queue_source(INBOX_ARN + "-v2")) == [] and [c.dag_id for c in store.consumers("inbox")] == [
        "audit"
    ]
