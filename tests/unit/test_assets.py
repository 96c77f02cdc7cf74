"""Assets: held to what Airflow 3.3 makes of the same input (tests/conformance/airflow_assets.json,
recorded by record_assets.py with Airflow's own Asset and AssetEvaluator), and the store's event,
queue and claim, which make one run per set of events however often an event is delivered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airstep.runtime import assets
from airstep.runtime.store.assets import AssetEvent, Consumer
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
    assert [w.uri for w in store.watched("lake")] == ["s3://lake/orders"]
    moved = Asset("orders", "s3://warehouse/orders").to_condition()  # the same name, another bucket
    assets.subscribe(store, "daily", moved, before)
    assert store.watched("lake") == [] and [w.dag_id for w in store.watched("warehouse")] == ["daily"]
    assets.subscribe(store, "daily", None, moved)  # the DAG's file is deleted
    assert store.watched("warehouse") == [] and store.consumers("orders") == []


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
