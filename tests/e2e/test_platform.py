"""The deployed path, end to end in moto: upload -> compile function -> schedule fires -> tasks load
the DAG by S3 object version -> metadata and tracked status; then changed, broken, duplicate and
removed uploads."""

import dataclasses
import io
import json
import threading
import time
from urllib.parse import unquote

import boto3
import pytest

from airstep.runtime import task_logs
from airstep.runtime.run_starter import start_scheduled_run
from airstep.runtime.run_tracker import status_event, track
from airstep.runtime.store import RunKey
from airstep_local.engine import ACCOUNT, FUNCTION_NAME, REGION
from airstep_local.faults import Faults
from deployed import BUCKET, TASK_LOG_GROUP, cli_stack, deployed_platform, fire, moto_function, quiesce, removal, upload
from helpers import EXAMPLES, ROOT

DAG_V1 = """
from datetime import datetime
from airstep import DAG, task

with DAG("nightly", schedule="0 2 * * *", start_date=datetime(2026, 1, 1)):
    @task
    def extract():
        return [1, 2, 3]

    @task
    def load(rows, ds=None):
        return f"{ds}: {sum(rows)} (v1)"

    load(extract())
"""
DAG_V2 = DAG_V1.replace("(v1)", "(v2)")


@pytest.fixture
def platform():
    with deployed_platform() as parts:
        yield parts


def test_upload_schedule_run_update_break_remove(platform):
    engine, deployer, s3, scheduler = platform
    v1, event = upload(s3, "dags/nightly.py", DAG_V1)
    (outcome,) = deployer.handle(event)
    assert outcome["outcome"] == "deployed" and outcome["dags"][0]["changed"]

    record = engine.store.get_dag("nightly")
    assert (record.file, record.removed) == (f"s3://{BUCKET}/dags/nightly.py", False)
    assert record.version.startswith("bundle:")  # the snapshot of dags/ that the run's tasks load
    first_bundle = record.version
    definition = engine.sfn.describe_state_machine(stateMachineArn=record.state_machine_arn)["definition"]
    assert first_bundle in definition and FUNCTION_NAME in definition
    schedule = scheduler.get_schedule(Name="airstep-dev-nightly", GroupName="airstep-dev")
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["DeadLetterConfig"]["Arn"].endswith("airstep-dev-schedule-dlq")

    # the schedule fires; a duplicate delivery of the same fire time starts nothing new
    started = fire(engine, scheduler, "2026-11-21T02:00:00Z")
    again = fire(engine, scheduler, "2026-11-21T02:00:00Z")
    assert again["duplicate"] and again["run_id"] == started["run_id"] == "scheduled__2026-11-21T02:00:00+00:00"
    key = RunKey("nightly", started["run_id"])
    # EventBridge may deliver a stale RUNNING and duplicates after the end: nothing moves back
    description = engine.sfn.describe_execution(executionArn=started["execution_arn"])
    stale = {**description, "status": "RUNNING", "stopDate": None}
    for detail in (stale, description, stale):
        fields = {
            k: detail.get(k)
            for k in ("executionArn", "stateMachineArn", "name", "status", "input", "startDate", "stopDate")
        }
        assert not track(status_event(fields), engine.store)["tracked"]
    run = engine.store.get_run(key)
    assert run.state == "success", run.error
    assert (run.state, run.exec_status, run.run_type) == ("success", "SUCCEEDED", "scheduled")
    assert engine.store.get_xcoms(key, ["load"]) == {"load": "2026-11-21: 6 (v1)"}
    assert {t.task_id: (t.state, t.try_number) for t in engine.store.task_instances(key)} == {
        "extract": ("success", 1),
        "load": ("success", 1),
    }

    # re-uploading the same bytes is a new object version; a changed file updates the machine
    v2, event = upload(s3, "dags/nightly.py", DAG_V2)
    (outcome,) = deployer.handle(event)
    assert outcome["dags"][0]["changed"] and engine.store.get_dag("nightly").version not in (first_bundle, None)
    second_bundle = engine.store.get_dag("nightly").version
    started = fire(engine, scheduler, "2026-11-22T02:00:00Z")
    assert engine.store.get_xcoms(RunKey("nightly", started["run_id"]), ["load"]) == {"load": "2026-11-22: 6 (v2)"}
    # the run of the first version can still load its own version
    assert engine.store.get_run(key).state == "success"

    # a broken upload records an import error and leaves v2 deployed
    _, event = upload(s3, "dags/nightly.py", "from airstep import DAG\nwith DAG('nightly'):\n    oops(\n")
    (outcome,) = deployer.handle(event)
    assert outcome["outcome"] == "import_error"
    (error,) = engine.store.list_import_errors()
    assert error.file == f"s3://{BUCKET}/dags/nightly.py" and error.errors[0]["line"] == 3
    assert engine.store.get_dag("nightly").version == second_bundle

    # a second file cannot take over an existing dag_id (the broken file, parsed again since the
    # bundle changed, still fails)
    _, event = upload(s3, "dags/copy.py", DAG_V1)
    outcomes = {o["file"].rsplit("/", 1)[1]: o for o in deployer.handle(event)}
    assert {name: o["outcome"] for name, o in outcomes.items()} == {
        "copy.py": "import_error",
        "nightly.py": "import_error",
    }
    assert "already defined in" in outcomes["copy.py"]["errors"][0]

    outcomes = deployer.handle(removal(s3, "dags/copy.py"))
    assert {"file": f"s3://{BUCKET}/dags/copy.py", "outcome": "removed", "dags": []} in outcomes

    # removing the file deletes the schedule and marks the DAG removed; history stays
    (outcome,) = deployer.handle(removal(s3, "dags/nightly.py"))
    assert outcome == {"file": f"s3://{BUCKET}/dags/nightly.py", "outcome": "removed", "dags": ["nightly"]}
    assert engine.store.get_dag("nightly").removed
    assert scheduler.list_schedules(GroupName="airstep-dev")["Schedules"] == []
    assert engine.store.runs_of_dag("nightly")


def test_unchanged_upload_is_a_no_op(platform):
    engine, deployer, s3, _ = platform
    _, event = upload(s3, "dags/nightly.py", DAG_V1)
    deployer.handle(event)
    compiled_at = engine.store.get_dag("nightly").compiled_at
    # a duplicate S3 notification: nothing under dags/ changed, so nothing is parsed or deployed
    assert deployer.handle(event) == []
    assert engine.store.get_dag("nightly").compiled_at == compiled_at


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"# an airflow dag\n\xff\xfe not utf8", "not valid UTF-8"),
        (b"x = 1  # an airflow dag\n", "no DAG is defined"),
        (b"import sys  # an airflow dag\nsys.exit(3)\n", "SystemExit: 3"),
    ],
)
def test_bad_files_never_crash_the_compile_function(platform, body, message):
    engine, deployer, s3, _ = platform
    response = s3.put_object(Bucket=BUCKET, Key="dags/bad.py", Body=body)
    obj = {"key": "dags/bad.py", "versionId": response["VersionId"], "size": len(body)}
    (outcome,) = deployer.handle(
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": obj}}]}
    )
    assert outcome["outcome"] == "import_error"
    assert message in outcome["errors"][0]


def test_a_bundle_too_large_to_parse_is_an_import_error(platform):
    import os

    _, deployer, s3, _ = platform
    noise = os.urandom(3 * 1024 * 1024).hex()  # does not compress: 6 MB of text, ~4.5 MB zipped
    _, event = upload(s3, "dags/huge.py", f"# an airflow dag\nNOISE = '{noise}'\n")
    (outcome,) = deployer.handle(event)
    assert outcome["outcome"] == "refused" and "over the 4,194,304 bytes it may be" in outcome["errors"][0]


def test_run_keeps_its_version_when_the_file_changes(platform):
    """Tasks load the DAG at the version in their payload, not the latest object."""
    from airstep.runtime.dag_cache import read_s3

    _, _, s3, _ = platform
    v1, _ = upload(s3, "dags/nightly.py", DAG_V1)
    upload(s3, "dags/nightly.py", DAG_V2)
    assert b"(v1)" in read_s3(f"s3://{BUCKET}/dags/nightly.py", v1, s3)


def test_scheduled_time_placeholder_is_in_the_target(platform):
    engine, deployer, s3, scheduler = platform
    _, event = upload(s3, "dags/nightly.py", DAG_V1)
    deployer.handle(event)
    target = scheduler.get_schedule(Name="airstep-dev-nightly", GroupName="airstep-dev")["Target"]
    payload = json.loads(target["Input"])
    assert payload["scheduled_time"] == "<aws.scheduler.scheduled-time>"
    assert payload["state_machine_arn"] == engine.store.get_dag("nightly").state_machine_arn
    # start_date is in the past: EventBridge refuses a past StartDate, so none is set
    assert "StartDate" not in scheduler.get_schedule(Name="airstep-dev-nightly", GroupName="airstep-dev")


def test_cli_against_a_deployed_stack(platform):
    """`airstep trigger`, `runs list/show` and `dags list --stack` read the stack's outputs and table."""
    from typer.testing import CliRunner

    from airstep_cli.main import app

    engine, deployer, s3, _ = platform
    cli_stack()
    # a task prints (tries and the CLI share one process here: see the hold below)
    printing = DAG_V1.replace('return f"{ds}: {sum(rows)} (v1)"', 'print("loaded"); return f"{ds}: {sum(rows)} (v1)"')
    _, event = upload(s3, "dags/nightly.py", printing)
    deployer.handle(event)
    deployer.handle(upload(s3, "dags/broken.py", "from airstep import DAG\nwith DAG(:\n")[1])
    cli = CliRunner()
    stack = ["--stack", "airstep-dev", "--region", REGION]

    executor_output = io.StringIO()  # what the executor prints in Lambda, CloudWatch Logs keeps
    previous = task_logs.configure(task_logs.CloudWatchSink(executor_output))
    # no task begins while CliRunner holds sys.stdout: its restore would take the try's output elsewhere
    cli_ended = threading.Event()
    engine.session.faults = Faults(invoke=lambda function, event: None if cli_ended.wait(30) else "TimedOut")
    try:
        started = cli.invoke(
            app, ["trigger", "nightly", *stack, "--conf", '{"k": 1}', "--logical-date", "2026-11-20T00:00:00Z"]
        )
        cli_ended.set()
        engine.session.faults = None
        assert started.exit_code == 0, started.output
        assert "manual__2026-11-20T00:00:00+00:00" in started.output
        arn = started.output.split(": ", 1)[1].strip()
        while engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            time.sleep(0.02)
        engine._track(arn)
    finally:
        cli_ended.set()
        task_logs.configure(previous)
    cloudwatch = boto3.client("logs")
    cloudwatch.create_log_group(logGroupName=TASK_LOG_GROUP)
    cloudwatch.create_log_stream(logGroupName=TASK_LOG_GROUP, logStreamName="2026/11/20/[$LATEST]abc")
    now = int(time.time() * 1000)
    lines = ["START RequestId: 1 Version: $LATEST", *executor_output.getvalue().splitlines()]
    cloudwatch.put_log_events(
        logGroupName=TASK_LOG_GROUP,
        logStreamName="2026/11/20/[$LATEST]abc",
        logEvents=[{"timestamp": now, "message": line} for line in lines],
    )
    logged = cli.invoke(app, ["logs", "manual__2026-11-20T00:00:00+00:00", "load", *stack])
    assert logged.exit_code == 0 and logged.stdout == "loaded\n", logged.output
    quiet = cli.invoke(app, ["logs", "manual__2026-11-20T00:00:00+00:00", "extract", *stack])
    assert quiet.exit_code == 0 and "try 1 of extract printed and logged nothing" in quiet.output

    # the UI over the stack: the same pages and data as locally
    from test_ui import get

    from airstep_cli.metadata import open_target
    from airstep_ui.records import StackRecords
    from airstep_ui.server import UiApp

    with open_target("airstep-dev", REGION) as target:
        ui = UiApp(StackRecords(target, REGION))
        assert [d["dag_id"] for d in json.loads(get(ui, "/api/dags")[2])["dags"]] == ["nightly"]
        assert json.loads(get(ui, "/api/dags")[2])["import_errors"][0]["file"].endswith("dags/broken.py")
        path = "/dags/nightly/runs/manual__2026-11-20T00%3A00%3A00%2B00%3A00"
        shown = json.loads(get(ui, "/api" + path)[2])
        assert [(t["task_id"], t["state"]) for t in shown["tasks"]] == [("extract", "success"), ("load", "success")]
        status, _, page = get(ui, path)
        assert status == 200 and 'data-task-id="extract" data-state="success"' in page
        logged = json.loads(get(ui, f"/api{path}/tasks/load/logs")[2])
        assert logged["log"] == "loaded\n"
        assert get(ui, "/dags/nightly/runs/nope")[0] == 404 and get(ui, "/dags/nope")[0] == 404
        assert shown["cost"]["region"] == REGION and shown["usage"]["transitions"] > 0
        assert shown["usage"]["lambda_requests"] == 5  # runner: extract, load, finalize; executor: extract, load
        assert [len(t["tries"]) for t in shown["tasks"]] == [1, 1]
        grid = json.loads(get(ui, "/api/dags/nightly")[2])
        assert [t["task_id"] for t in grid["tasks"]] == ["extract", "load"]
        (column,) = [r for r in grid["runs"] if r["run_id"] == "manual__2026-11-20T00:00:00+00:00"]
        assert column["tasks"] == {t: {"state": "success", "instances": 1} for t in ("extract", "load")}
        assert 'data-dag-id="nightly"' in get(ui, "/")[2]
        status, _, grid_page = get(ui, "/dags/nightly")
        assert status == 200 and "manual__2026-11-20T00:00:00+00:00" in unquote(grid_page)

    runs = json.loads(cli.invoke(app, ["runs", "list", "nightly", *stack, "--json"]).output)
    runs = [r for r in runs if r["run_type"] == "manual"]  # (its deploy started the latest scheduled run)
    assert [(r["run_id"], r["state"], r["run_type"]) for r in runs] == [
        ("manual__2026-11-20T00:00:00+00:00", "success", "manual")
    ]
    shown = json.loads(cli.invoke(app, ["runs", "show", runs[0]["run_id"], *stack, "--json"]).output)
    assert [t["task_id"] for t in shown["tasks"]] == ["extract", "load"]
    listed = cli.invoke(app, ["dags", "list", *stack, "--json"])
    data = json.loads(listed.output)
    assert [d["dag_id"] for d in data["dags"]] == ["nightly"]
    assert data["import_errors"][0]["file"].endswith("dags/broken.py")

    missing = cli.invoke(app, ["trigger", "nope", *stack])
    assert missing.exit_code == 1 and "not deployed" in missing.output

    # a run triggered from the UI's API is admitted in the stack as `airstep trigger` admits it
    from test_ui import request

    with open_target("airstep-dev", REGION) as target:
        ui = UiApp(StackRecords(target, REGION))
        status, _, body = request(
            ui, "POST", "/api/dags/nightly/trigger", b'{"conf": {"k": 2}}', CONTENT_TYPE="application/json"
        )
        started = json.loads(body)
        assert status == 200, body
        assert started["conf"] == {"k": 2} and started["state"] in ("running", "queued")
        assert engine.store.get_run(RunKey("nightly", started["run_id"])) is not None


EVENTS = ROOT / "events"


def test_sample_events_run_through_their_handlers(platform):
    """Each sample event in events/ is accepted by its function's real code (against moto)."""
    from airstep.loader import content_version
    from airstep.runtime import assets, executor, task_runner
    from airstep.runtime.run_tracker import track

    engine, deployer, s3, _ = platform
    put = json.loads((EVENTS / "compile_dags" / "s3_put.json").read_text())
    record = put["Records"][0]
    bucket, key = record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    body = (EXAMPLES / "etl_taskflow.py").read_bytes()
    record["s3"]["object"]["versionId"] = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    record["s3"]["object"]["size"] = len(body)
    assert deployer.handle(put)[0]["outcome"] == "deployed"
    machine = engine.sfn.describe_state_machine(stateMachineArn=engine.store.get_dag("etl_taskflow").state_machine_arn)
    model_uri = json.loads(machine["definition"])["States"]["dagrun@start"]["Parameters"]["dag"]["model"]
    delete = json.loads((EVENTS / "compile_dags" / "s3_delete.json").read_text())
    s3.delete_object(Bucket=bucket, Key=delete["Records"][0]["s3"]["object"]["key"])
    assert deployer.handle(delete)[0]["dags"] == ["etl_taskflow"]

    schedule = json.loads((EVENTS / "start_run" / "schedule.json").read_text())
    schedule["state_machine_arn"] = engine.store.get_dag("etl_taskflow").state_machine_arn
    assert start_scheduled_run(schedule, engine.sfn, engine.store)["run_id"] == "scheduled__2026-11-21T00:00:00+00:00"

    status = json.loads((EVENTS / "track_runs" / "status_change.json").read_text())
    assert track(status, engine.store)["tracked"]

    created = json.loads((EVENTS / "asset_events" / "object_created.json").read_text())
    assets.subscribe(
        engine.store, "lake", {"asset": "s3://example-lake/orders", "uri": "s3://example-lake/orders"}, None
    )
    recorded = _function("asset_events")(created, _Context())
    assert recorded == {
        "object": "s3://example-lake/orders/2026-11-21/part 0.csv",
        "assets": ["s3://example-lake/orders"],
        "consumers": ["lake"],
    }

    messages = json.loads((EVENTS / "asset_events" / "sqs_messages.json").read_text())
    inbox = {"asset": "inbox", "uri": "inbox", "watchers": [{"name": "w", "queue": _INBOX_URL}]}
    assets.subscribe(engine.store, "orders", inbox, None)
    assert _function("asset_events")(messages, _Context()) == {"batchItemFailures": []}
    (event,) = engine.store.latest_asset_events("inbox")
    assert event.extra["payload"]["message_batch"][0]["Body"] == '{"order_id": 42, "status": "paid"}'

    version = content_version(body)
    expectations = {"task": ("state", "upstream_failed"), "gate": ("open", False), "finalize": ("state", "failed")}
    for name, (field, expected) in expectations.items():
        event = json.loads((EVENTS / "run_task" / f"{name}.json").read_text())
        event["ctx"]["dag"].update(dag_id="etl_taskflow", model=model_uri)
        event["ctx"]["run"]["dag_id"] = "etl_taskflow"
        if name == "gate":
            event.update(task_id="load", wait_for=["transform"])
        result = task_runner.lambda_handler(event, _Context())
        assert result[field] == expected, (name, result)

    attempt = json.loads((EVENTS / "execute_task" / "try.json").read_text())
    attempt["dag"].update(file=str(EXAMPLES / "etl_taskflow.py"), version=version, model=model_uri)
    result = executor.lambda_handler(attempt, _Context())
    assert (result["state"], json.loads(result["xcoms"])["return_value"]) == ("success", {"count": 2, "total": 330})


_INBOX_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-inbox"  # the sample event's queue


class _Context:
    function_name = "airstep-dev-run-task"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:airstep-dev-run-task"
    memory_limit_in_mb = 1024
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis():
        return 900_000


def _function(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_app", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def test_lambda_entry_points(platform, monkeypatch, capsys):
    """The functions' app.py handlers (as Lambda calls them) do their work and emit alarm metrics."""
    from airstep.runtime.clients import registry

    engine, deployer, s3, scheduler = platform
    for variable, value in {
        "AIRSTEP_ENVIRONMENT": "dev",
        "AIRSTEP_TASK_RUNNER_ARN": deployer.settings.task_runner_arn,
        "AIRSTEP_STATE_MACHINE_ROLE_ARN": deployer.settings.state_machine_role_arn,
        "AIRSTEP_START_RUN_ARN": deployer.settings.start_run_arn,
        "AIRSTEP_SCHEDULER_ROLE_ARN": deployer.settings.scheduler_role_arn,
        "AIRSTEP_SCHEDULE_GROUP": deployer.settings.schedule_group,
        "AIRSTEP_SCHEDULE_DLQ_ARN": deployer.settings.schedule_dlq_arn,
        "AIRSTEP_PARSER_FUNCTION": deployer.settings.parser_function,
        "AIRSTEP_EXECUTOR_FUNCTION": deployer.settings.executor_function,
    }.items():
        monkeypatch.setenv(variable, value)
    registry.reset()  # the functions build their clients from the environment set above

    _, event = upload(s3, "dags/nightly.py", DAG_V1)
    assert _function("compile_dags")(event, _Context())["files"][0]["outcome"] == "deployed"
    _, broken = upload(s3, "dags/other.py", "from airstep import DAG\noops(\n")
    assert _function("compile_dags")(broken, _Context())["files"][0]["outcome"] == "import_error"
    assert '"DagImportErrors"' in capsys.readouterr().out  # EMF metric for the alarm

    target = scheduler.get_schedule(Name="airstep-dev-nightly", GroupName="airstep-dev")["Target"]
    fired = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", "2026-11-23T02:00:00Z"))
    started = _function("start_run")(fired, _Context())
    assert started["run_id"] == "scheduled__2026-11-23T02:00:00+00:00" and not started["duplicate"]
    while engine.sfn.describe_execution(executionArn=started["execution_arn"])["status"] == "RUNNING":
        time.sleep(0.02)
    description = engine.sfn.describe_execution(executionArn=started["execution_arn"])
    failed = {k: description.get(k) for k in ("executionArn", "stateMachineArn", "name", "input", "startDate")}
    failed.update(status="ABORTED", stopDate=description["stopDate"])
    result = _function("track_runs")(status_event(failed), _Context())
    assert result["tracked"] and engine.store.get_run(RunKey("nightly", started["run_id"])).exec_status == "ABORTED"
    assert '"RunsAborted"' in capsys.readouterr().out


PIPELINE = """
from datetime import datetime
from airstep import DAG, task
from common.naming import greeting

with DAG("pipeline", schedule="0 3 * * *", start_date=datetime(2026, 1, 1)):
    @task
    def hello():
        from common.naming import greeting as late  # imported inside the task, as Airflow allows
        return [greeting(), late(), open(__file__.replace("pipeline.py", "sql/q.sql")).read().strip()]

    hello()
"""


def test_helpers_and_data_files_are_one_bundle_and_a_run_pins_it(platform):
    engine, deployer, s3, scheduler = platform
    upload(s3, "dags/common/__init__.py", "")
    upload(s3, "dags/common/naming.py", "def greeting():\n    return 'hello v1'\n")
    upload(s3, "dags/sql/q.sql", "select 1")
    _, event = upload(s3, "dags/pipeline.py", PIPELINE)
    (outcome,) = deployer.handle(event)
    assert outcome["outcome"] == "deployed"
    first = engine.store.get_dag("pipeline")
    started = fire(engine, scheduler, "2026-11-21T03:00:00Z", name="airstep-dev-pipeline")
    key = RunKey("pipeline", started["run_id"])
    assert engine.store.get_xcoms(key, ["hello"]) == {"hello": ["hello v1", "hello v1", "select 1"]}

    # a helper changes: the DAG file that imported it is parsed again and pinned to the new bundle
    _, event = upload(s3, "dags/common/naming.py", "def greeting():\n    return 'hello v2'\n")
    (outcome,) = deployer.handle(event)
    assert outcome["file"].endswith("dags/pipeline.py") and outcome["dags"][0]["changed"]
    second = engine.store.get_dag("pipeline")
    assert second.version != first.version
    started = fire(engine, scheduler, "2026-11-22T03:00:00Z", name="airstep-dev-pipeline")
    assert engine.store.get_xcoms(RunKey("pipeline", started["run_id"]), ["hello"])["hello"][0] == "hello v2"

    # a data file changes: every DAG file is parsed again (it may read data while it loads)
    _, event = upload(s3, "dags/sql/q.sql", "select 2")
    assert [o["file"].rsplit("/", 1)[1] for o in deployer.handle(event)] == ["pipeline.py"]

    # the first run's tasks still load the first bundle: a run never sees a helper change halfway
    from airstep.contract import DagRef, DagRun
    from airstep.runtime.executor import TryRequest, run_try

    machine = json.loads(engine.sfn.describe_state_machine(stateMachineArn=first.state_machine_arn)["definition"])
    model_uri = machine["States"]["dagrun@start"]["Parameters"]["dag"]["model"]
    old = TryRequest(
        DagRef("pipeline", first.file, first.version, model_uri),
        DagRun.from_input({"dag_id": "pipeline", "run_id": "manual__x"}),
        "hello",
        1,
        60,
    )
    assert json.loads(run_try(old).xcoms)["return_value"] == ["hello v1", "hello v1", "select 1"]

    # a file that is not a DAG file (no "dag" and "airflow") is a helper: never parsed, never an error
    _, event = upload(s3, "dags/common/util.py", "X = 1\n")
    assert deployer.handle(event) == [] and engine.store.list_import_errors() == []


HOSTILE_UPLOADS = {
    "writes the table": "import boto3\nboto3.client('dynamodb', region_name='us-east-1').put_item("
    "TableName='airstep-local', Item={'pk': {'S': 'DAG#nightly'}, 'sk': {'S': 'DAG'}})\n",
    "starts executions": "import boto3\nboto3.client('stepfunctions', region_name='us-east-1').list_state_machines()\n",
    "loops forever": "while True:\n    pass\n",
    "exhausts memory": "chunks = []\nwhile True:\n    chunks.append(bytearray(100_000_000))\n",
    "ends the process": "import os\nos._exit(0)\n",
}


@pytest.mark.parametrize("behaviour", sorted(HOSTILE_UPLOADS))
def test_a_hostile_upload_is_an_import_error_and_changes_nothing(platform, monkeypatch, behaviour):
    monkeypatch.setenv("AIRSTEP_DAG_IMPORT_TIMEOUT", "2")
    engine, deployer, s3, scheduler = platform
    _, event = upload(s3, "dags/nightly.py", DAG_V1)
    deployer.handle(event)
    quiesce(engine)  # the run its deploy caught up on has written its records
    before = engine.store.get_dag("nightly")
    definition = engine.sfn.describe_state_machine(stateMachineArn=before.state_machine_arn)["definition"]
    items = {(i["pk"]["S"], i["sk"]["S"]): i for page in engine.store.table.scan() for i in page}

    _, event = upload(s3, "dags/hostile.py", "# an airflow dag file\n" + HOSTILE_UPLOADS[behaviour])
    (outcome,) = deployer.handle(event)
    assert outcome["outcome"] == "import_error", outcome
    after = {(i["pk"]["S"], i["sk"]["S"]): i for page in engine.store.table.scan() for i in page}
    changed = {key for key in after if after[key] != items.get(key)}
    hostile = f"FILE#s3://{BUCKET}/dags/hostile.py"
    assert changed <= {(hostile, "IMPORT_ERROR"), (hostile, "FILE"), ("BUNDLES", "LATEST")}
    assert engine.store.get_dag("nightly") == before  # the previous version still runs
    assert engine.sfn.describe_state_machine(stateMachineArn=before.state_machine_arn)["definition"] == definition
    assert [s["Name"] for s in scheduler.list_schedules(GroupName="airstep-dev")["Schedules"]] == [
        "airstep-dev-nightly"
    ]


def test_events_in_any_order_deploy_the_latest_state(platform):
    engine, deployer, s3, _ = platform
    _, v1_event = upload(s3, "dags/nightly.py", DAG_V1)
    _, v2_event = upload(s3, "dags/nightly.py", DAG_V2)
    deployer.handle(v2_event)
    deployer.handle(v1_event)  # v1's event arrives last
    started = fire(engine, platform[3], "2026-11-21T02:00:00Z")
    assert engine.store.get_xcoms(RunKey("nightly", started["run_id"]), ["load"]) == {"load": "2026-11-21: 6 (v2)"}

    # a delete handled before its put: the put's late event must not bring the DAG back
    _, put_event = upload(s3, "dags/other.py", DAG_V1.replace('"nightly"', '"other"'))
    delete_event = removal(s3, "dags/other.py")
    deployer.handle(delete_event)
    deployer.handle(put_event)
    assert engine.store.get_dag("other") is None


def test_a_deploy_cut_short_is_completed_by_the_retry(platform):
    engine, deployer, s3, scheduler = platform
    _, event = upload(s3, "dags/nightly.py", DAG_V1)
    deployer.handle(event)
    _, event = upload(s3, "dags/nightly.py", DAG_V2.replace("0 2 * * *", "0 4 * * *"))
    real_update = scheduler.update_schedule
    calls = {"n": 0}

    def fails_once(**request):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the Scheduler API timed out")
        return real_update(**request)

    deployer.scheduler = type("Flaky", (), {"__getattr__": lambda self, n: getattr(scheduler, n)})()
    deployer.scheduler.update_schedule = fails_once
    with pytest.raises(RuntimeError):
        deployer.handle(event)  # its retries fail too, say, and the event ends in the failed-events queue
    # any later change completes it: a file's deploy is committed (its file record) only once done
    _, unrelated = upload(s3, "dags/util.py", "X = 1\n")  # a helper nightly.py does not import
    (outcome,) = deployer.handle(unrelated)
    assert outcome["file"].endswith("dags/nightly.py") and outcome["outcome"] == "deployed"
    record = engine.store.get_dag("nightly")
    definition = engine.sfn.describe_state_machine(stateMachineArn=record.state_machine_arn)["definition"]
    assert record.version in definition
    schedule = scheduler.get_schedule(Name="airstep-dev-nightly", GroupName="airstep-dev")
    assert schedule["ScheduleExpression"] == "cron(0 4 * * ? *)"


def test_a_queue_without_an_executor_function_is_an_import_error(platform):
    _, deployer, s3, _ = platform
    _, event = upload(s3, "dags/nightly.py", DAG_V1.replace("def load(rows, ds=None):", "def load(rows, ds=None):"))
    source = DAG_V1.replace("@task\n    def load", "@task(queue='warehouse')\n    def load")
    _, event = upload(s3, "dags/nightly.py", source)
    (outcome,) = deployer.handle(event)
    assert outcome["outcome"] == "refused"
    assert "queue 'warehouse' has no executor function airstep-local-execute-task-warehouse" in outcome["errors"][0]


WATCHING = """
from airstep import DAG, Asset, AssetWatcher, MessageQueueTrigger, task

trigger = MessageQueueTrigger(queue="https://sqs.us-east-1.amazonaws.com/123456789012/{queue}")
inbox = Asset("inbox", watchers=[AssetWatcher("w", trigger)])

with DAG("{watcher}", schedule=[inbox]):
    task(lambda: None, task_id="noop")()

with DAG("{other}", schedule=[Asset("inbox")]):
    task(lambda: None, task_id="noop")()
"""


def test_a_watched_queue_is_mapped_while_a_deployed_dag_watches_it(platform):
    engine, deployer, s3, _ = platform
    moto_function("airstep-dev-asset-events")
    functions, sqs = boto3.client("lambda"), boto3.client("sqs")
    function_arn = functions.get_function(FunctionName="airstep-dev-asset-events")["Configuration"]["FunctionArn"]
    inbox = f"arn:aws:sqs:{REGION}:{ACCOUNT}:inbox"
    deployer.settings = dataclasses.replace(
        deployer.settings, asset_events_arn=function_arn, asset_queues=(f"arn:aws:sqs:{REGION}:{ACCOUNT}:in*",)
    )

    def deploy(watcher="a", other="b"):
        _, event = upload(s3, "dags/watching.py", WATCHING.format(queue="inbox", watcher=watcher, other=other))
        return deployer.handle(event)[0]

    def mappings():
        return functions.list_event_source_mappings(FunctionName=function_arn)["EventSourceMappings"]

    # Lambda would refuse the queue: the DAGs are not deployed, and nothing is mapped
    refused = deploy()
    assert refused["outcome"] == "refused" and engine.store.get_dag("a") is None and mappings() == []
    assert (
        f"watching.py:7: asset 'inbox' watches the SQS queue {inbox}, which cannot be watched: the queue does not exist"
        in refused["errors"][0]
    )
    url = sqs.create_queue(QueueName="inbox", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    assert "its visibility timeout (10 s) is under the asset-events function's timeout (20 s)" in deploy()["errors"][0]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "120"})
    assert deploy()["outcome"] == "deployed"
    (mapping,) = mappings()
    assert mapping["EventSourceArn"] == inbox and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # the watcher moves from one DAG of the file to the other: the queue stays mapped, once
    assert deploy(watcher="b", other="a")["outcome"] == "deployed"
    assert [m["UUID"] for m in mappings()] == [mapping["UUID"]]
    # no deployed DAG watches it any more: it is unmapped (its messages stay queued)
    s3.delete_object(Bucket=BUCKET, Key="dags/watching.py")
    deployer.handle(removal(s3, "dags/watching.py"))
    assert mappings() == []
