"""Asset-triggered DAGs as a user runs them locally: a producer's task updates an asset (outlets),
`airstep run --with-consumers` runs the DAGs of its folder scheduled on it, with the events in their
context, an AssetAll waits for every asset across separate runs, `airstep assets list` shows
who updates what, and `airstep assets event` lands an object in S3 (or updates an asset by hand)."""

import json

from test_cli import airstep

PRODUCERS = """
from datetime import datetime
from airflow.sdk import DAG, Asset, task

orders = Asset("s3://lake/orders/")

with DAG("orders_producer", schedule=None, start_date=datetime(2026, 1, 1)):
    @task(outlets=[orders])
    def write_orders():
        return 1

    @task
    def parts():
        return [1, 2]

    @task(outlets=[Asset("parts")])
    def write_part(x):
        return x

    write_orders()
    write_part.expand(x=parts())

with DAG("customers_producer", schedule=None, start_date=datetime(2026, 1, 1)):
    @task(outlets=[Asset("customers")])
    def write_customers():
        return 1

    write_customers()
"""

CONSUMERS = """
from datetime import datetime
from airflow.sdk import DAG, Asset, task
from airflow.providers.standard.operators.latest_only import LatestOnlyOperator

with DAG("report", schedule=[Asset("s3://lake/orders/"), Asset("customers")], start_date=datetime(2026, 1, 1)):
    @task
    def read(**context):
        events = context["triggering_asset_events"]
        seen = sorted((a.name, e.source_dag_id, e.source_task_id) for a in events for e in events[a])
        expected = [("customers", "customers_producer", "write_customers"),
                    ("s3://lake/orders/", "orders_producer", "write_orders")]
        assert seen == expected, seen  # the task fails otherwise
        assert events[Asset("customers")][0].timestamp.tzinfo is not None

    read()

with DAG("per_part", schedule=Asset("parts") | Asset("never"), start_date=datetime(2026, 1, 1)):
    @task
    def count(**context):
        triggered = context["dag_run"].run_type == "asset_triggered"
        assert context["logical_date"] is None or not triggered
        return 1

    LatestOnlyOperator(task_id="latest") >> count()  # no next interval: it lets the run through
"""


def xcom(cwd, dag_id, run_id, task_id):
    shown = airstep("runs", "show", run_id, "--dag-id", dag_id, "--json", cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_consumers_run_when_their_assets_are_updated(tmp_path):
    (tmp_path / "producers.py").write_text(PRODUCERS)
    (tmp_path / "consumers.py").write_text(CONSUMERS)
    (tmp_path / "broken.py").write_text("from airflow.sdk import DAG\noops(\n")  # skipped, said so

    first = airstep("run", "producers.py", "--dag-id", "orders_producer", "--with-consumers", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    ran = json.loads(first.stdout)
    assert ran["state"] == "success"
    # parts' two mapped instances are two events, one run of per_part; report waits for customers
    assert [(r["dag_id"], r["state"]) for r in ran["triggered_runs"]] == [("per_part", "success")]
    assert "broken.py:2" in first.stderr and "skipped" in first.stderr

    second = airstep(
        "run", "producers.py", "--dag-id", "customers_producer", "--with-consumers", "--json", cwd=tmp_path
    )
    assert second.returncode == 0, second.stderr
    (report,) = json.loads(second.stdout)["triggered_runs"]
    assert report["dag_id"] == "report" and report["run_id"].startswith("asset_triggered__")
    assert report["state"] == "success"  # its task found the events in its context
    shown = xcom(tmp_path, "report", report["run_id"], "read")
    assert shown["triggered_by"] == "asset" and shown["logical_date"] is None
    assert [(e["asset"], e["source"]["task_id"]) for e in shown["triggering_asset_events"]] == [
        ("s3://lake/orders/", "write_orders"),
        ("customers", "write_customers"),
    ]

    again = airstep("run", "producers.py", "--dag-id", "customers_producer", "--with-consumers", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["triggered_runs"] == []  # report waits for orders again

    listed = json.loads(airstep("assets", "list", "--json", cwd=tmp_path).stdout)["assets"]
    rows = {row["asset"]: row for row in listed}
    assert rows["s3://lake/orders/"]["uri"] == "s3://lake/orders"
    assert rows["s3://lake/orders/"]["producers"] == ["orders_producer.write_orders"]
    assert rows["customers"]["consumers"] == ["report"]
    assert rows["never"]["producers"] == [] and rows["never"]["last_event"] is None
    assert rows["customers"]["last_event"]["source"]["dag_id"] == "customers_producer"


def test_a_run_without_the_flag_still_queues_its_events(tmp_path):
    """Events are recorded and queued for the folder's consumers whether or not they run now: a
    later `--with-consumers` run of any DAG there starts what is due."""
    (tmp_path / "producers.py").write_text(PRODUCERS)
    (tmp_path / "consumers.py").write_text(CONSUMERS)
    for dag_id in ("orders_producer", "customers_producer"):
        assert airstep("run", "producers.py", "--dag-id", dag_id, cwd=tmp_path).returncode == 0
    later = airstep("run", "consumers.py", "--dag-id", "per_part", "--with-consumers", "--json", cwd=tmp_path)
    assert later.returncode == 0, later.stderr
    assert sorted(r["dag_id"] for r in json.loads(later.stdout)["triggered_runs"]) == ["per_part", "report"]


def test_asset_arguments_are_checked_where_they_are_written(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import DAG, Asset, task\n\n"
        "with DAG('bad', schedule=None, start_date=datetime(2026, 1, 1)):\n"
        "    @task(outlets=['not an asset'])\n    def t():\n        pass\n    t()\n"
    )
    proc = airstep("compile", "bad.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bad.py:8: outlets must be Asset objects, got 'not an asset'" in proc.stderr
    (tmp_path / "bad.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import DAG, Asset\n\n"
        "with DAG('bad', schedule=[Asset('airflow://x')], start_date=datetime(2026, 1, 1)):\n    pass\n"
    )
    proc = airstep("compile", "bad.py", cwd=tmp_path)
    assert proc.returncode == 1 and "bad.py:4" in proc.stderr and "Asset scheme 'airflow' is reserved" in proc.stderr


LAKE = """
from datetime import datetime
from airflow.sdk import DAG, Asset, task

orders = Asset("s3://lake/orders")

with DAG("load_orders", schedule=[orders], start_date=datetime(2026, 1, 1)):
    @task
    def load(triggering_asset_events=None):
        (event,) = triggering_asset_events[orders]
        assert event.source["key"] == "orders/2026-12-05/part 0.csv", event.source
        assert event.extra == {"reason": "PutObject"} and event.source_dag_id is None, event.extra
        return event.source["key"]

    load()

with DAG("audit", schedule=[Asset("s3://lake/orders/_SUCCESS") & Asset("approved")], start_date=datetime(2026, 1, 1)):
    @task
    def check(triggering_asset_events=None):
        extras = [e.extra for events in triggering_asset_events.values() for e in events]
        assert {"by": "ops"} in extras, extras

    check()
"""


def test_an_object_landing_in_s3_runs_the_dags_scheduled_on_its_folder(tmp_path):
    (tmp_path / "lake.py").write_text(LAKE)
    landed = airstep("assets", "event", "s3://lake/orders/2026-12-05/part 0.csv", "--json", cwd=tmp_path)
    assert landed.returncode == 0, landed.stderr
    result = json.loads(landed.stdout)
    assert result["assets"] == ["s3://lake/orders"]
    assert [(r["dag_id"], r["state"]) for r in result["triggered_runs"]] == [("load_orders", "success")]

    # the marker is under orders/ too, and audit also waits for an asset updated by hand
    marker = airstep("assets", "event", "s3://lake/orders/_SUCCESS", "--json", cwd=tmp_path)
    assert json.loads(marker.stdout)["assets"] == ["s3://lake/orders", "s3://lake/orders/_SUCCESS"]
    assert [r["dag_id"] for r in json.loads(marker.stdout)["triggered_runs"]] == ["load_orders"]
    assert marker.returncode == 1  # load_orders expected the other key: its task failed, and so the command
    by_hand = airstep("assets", "event", "approved", "--extra", '{"by": "ops"}', "--json", cwd=tmp_path)
    assert by_hand.returncode == 0, by_hand.stderr
    assert [(r["dag_id"], r["state"]) for r in json.loads(by_hand.stdout)["triggered_runs"]] == [("audit", "success")]

    elsewhere = airstep("assets", "event", "s3://lake/customers/1.csv", cwd=tmp_path)
    assert elsewhere.returncode == 1 and "Traceback" not in elsewhere.stderr
    assert "s3://lake/customers/1.csv: no DAG in . is scheduled on an s3:// asset at or above it" in elsewhere.stderr
    unknown = airstep("assets", "event", "approve", cwd=tmp_path)
    assert (
        unknown.returncode == 1
        and "approve: no DAG in . is scheduled on an asset of that name or URI" in unknown.stderr
    )
    bad = airstep("assets", "event", "approved", "--extra", "[1]", cwd=tmp_path)
    assert bad.returncode == 1 and "--extra: a JSON object is expected" in bad.stderr


INBOX = """
from datetime import datetime
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import DAG, Asset, AssetWatcher, task

trigger = MessageQueueTrigger(scheme="sqs", sqs_queue="https://sqs.eu-west-1.amazonaws.com/111122223333/orders")
orders = Asset("orders_inbox", watchers=[AssetWatcher(name="orders_watcher", trigger=trigger)])

with DAG(dag_id="process_orders", schedule=[orders], start_date=datetime(2026, 1, 1)):
    @task
    def process(triggering_asset_events=None):
        events = triggering_asset_events[orders]
        assert all(e.extra["from_trigger"] and e.source["queue"].endswith(":orders") for e in events), events
        bodies = [m["Body"] for e in events for m in e.extra["payload"]["message_batch"]]
        assert sorted(bodies) == ["a", '{"b": 2}'], bodies  # each message an event, in a batch of one

    process()

with DAG(dag_id="plain", schedule=[Asset("plain")], start_date=datetime(2026, 1, 1)):
    task(lambda: None, task_id="noop")()
"""


def test_messages_to_a_watched_queue_run_the_dags_scheduled_on_its_asset(tmp_path):
    (tmp_path / "inbox.py").write_text(INBOX)
    sent = airstep("assets", "event", "orders_inbox", "--message", "a", "--message", '{"b": 2}', "--json", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["assets"] == ["orders_inbox"]
    ((run),) = result["triggered_runs"]
    assert (run["dag_id"], run["state"]) == ("process_orders", "success")
    shown = xcom(tmp_path, "process_orders", run["run_id"], "process")
    assert [e["asset"] for e in shown["triggering_asset_events"]] == ["orders_inbox"] * 2
    listed = json.loads(airstep("assets", "list", "--json", cwd=tmp_path).stdout)["assets"]
    assert [a["queues"] for a in listed if a["asset"] == "orders_inbox"] == [
        ["https://sqs.eu-west-1.amazonaws.com/111122223333/orders"]
    ]

    unwatched = airstep("assets", "event", "plain", "--message", "x", cwd=tmp_path)
    assert unwatched.returncode == 1 and "Traceback" not in unwatched.stderr
    assert "--message: asset 'plain' has no AssetWatcher" in unwatched.stderr
    both = airstep("assets", "event", "orders_inbox", "--message", "x", "--extra", "{}", cwd=tmp_path)
    assert both.returncode == 1 and "--message and --extra: give one" in both.stderr
    other = airstep("assets", "event", "orders_inbox", "--message", "x", "--queue", "https://sqs.x", cwd=tmp_path)
    assert other.returncode == 1 and "--queue https://sqs.x: asset 'orders_inbox' watches https://sqs." in other.stderr
    alone = airstep("assets", "event", "orders_inbox", "--queue", "https://sqs.x", cwd=tmp_path)
    assert alone.returncode == 1 and "--queue: only with --message" in alone.stderr
    large = airstep("assets", "event", "orders_inbox", "--message", "ok", "--message", "x" * 20_000, cwd=tmp_path)
    assert large.returncode == 1 and "Traceback" not in large.stderr
    assert "--message 2: 20,1" in large.stderr and "over the 16,384 a message may be" in large.stderr


def test_an_asset_watcher_airstep_cannot_serve_is_an_import_error_at_its_line(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger\n"
        "from airflow.sdk import DAG, Asset, AssetWatcher\n\n"
        "trigger = MessageQueueTrigger(scheme='kafka', topics=['orders'])\n"
    )
    proc = airstep("compile", "bad.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bad.py:4" in proc.stderr and "scheme 'kafka' is not recognized" in proc.stderr
