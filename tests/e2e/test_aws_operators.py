"""The amazon provider's operators as Step Functions service integrations, run by the local engine:
moto's interpreter makes the calls (SNS and SQS in moto; a Lambda function from its handler here),
the task runner begins and ends each try around its call, and the records, XComs, retries, timeouts,
trigger rules and callbacks are those of any task."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from test_cli import airstep

from airstep.runtime.store import RunKey
from airstep_local.engine import LocalEngine, RunRequest
from helpers import EXAMPLES, ROOT, load_model

TOPIC = "arn:aws:sns:us-east-1:123456789012:finished"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/work"
CALLED: list[dict[str, Any]] = []


def adder(event: dict[str, Any], context: Any) -> Any:
    """The user's Lambda function, run here from its source."""
    CALLED.append(event)
    if event.get("fail"):
        raise ValueError(f"asked to fail ({event['fail']})")
    if event.get("flaky") and sum(1 for e in CALLED if e.get("flaky")) == 1:
        raise ConnectionError("first call fails")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"sum": event["a"] + 1}


CALLS = """
from datetime import datetime, timedelta
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.operators.sqs import SqsPublishOperator

def noted(context):
    with open(NOTES, "a") as notes:
        notes.write(f"{context['ti'].task_id} {context['ti'].try_number} {context.get('exception')}\\n")

with DAG("calls", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def make():
        return {"a": 41}

    made = make()
    notify = SnsPublishOperator(task_id="notify", target_arn=TOPIC, subject="finished",
                                message="done on {{ ds }}: {{ ti.xcom_pull('make')['a'] }}",
                                message_attributes={"rows": 3, "kind": "daily"})
    send = SqsPublishOperator(task_id="send", sqs_queue=QUEUE, message_content="plain body", delay_seconds=0)
    call = LambdaInvokeFunctionOperator(task_id="call", function_name="adder",
                                        payload="{{ ti.xcom_pull('make') | tojson }}", on_success_callback=noted)

    @task
    def read(ti=None):
        return [ti.xcom_pull("call")]

    made >> notify >> send >> call >> read()
    made >> call

with DAG("failures", schedule=None, start_date=datetime(2026, 1, 1),
         default_args={"retries": 1, "retry_delay": timedelta(seconds=1)}):
    raises = LambdaInvokeFunctionOperator(task_id="raises", function_name="adder", payload='{"fail": "always", "a": 1}',
                                          on_failure_callback=noted, on_retry_callback=noted)
    flaky = LambdaInvokeFunctionOperator(task_id="flaky", function_name="adder", payload='{"flaky": true, "a": 1}')
    slow = LambdaInvokeFunctionOperator(task_id="slow", function_name="adder", payload='{"sleep": 4, "a": 1}',
                                        execution_timeout=timedelta(seconds=1), retries=0)
    nowhere = SnsPublishOperator(task_id="nowhere", target_arn="{{ 'arn:aws:sns:us-east-1:123456789012:missing' }}",
                                 message="lost", retries=0)
    after = SqsPublishOperator(task_id="after", sqs_queue=QUEUE, message_content="never sent")
    anyway = SqsPublishOperator(task_id="anyway", sqs_queue=QUEUE, message_content="sent anyway",
                                trigger_rule="all_done")
    raises >> [after, anyway]
"""


@pytest.fixture
def calls_file(tmp_path: Path) -> tuple[Path, Path]:
    notes = tmp_path / "notes.txt"
    path = tmp_path / "calls.py"
    prelude = f"TOPIC = {TOPIC!r}\nQUEUE = {QUEUE!r}\nNOTES = {str(notes)!r}\n"
    path.write_text(prelude + CALLS)
    return path, notes


@pytest.fixture
def local() -> Any:
    CALLED.clear()
    with LocalEngine(functions={"adder": adder}) as engine:
        engine.session.calls = []
        yield engine


def instances(engine: LocalEngine, result: Any) -> dict[str, Any]:
    return {ti.task_id: ti for ti in engine.store.task_instances(RunKey(result.dag_id, result.run_id))}


def test_calls_publish_send_and_invoke_and_their_results_are_the_tasks_xcoms(local, calls_file):
    path, notes = calls_file
    model, source = load_model(path, "calls")
    result = local.run(model, source, RunRequest())
    assert result.state == "success", [(t.task_id, t.state, t.error) for t in instances(local, result).values()]
    values = local.store.get_xcoms(RunKey("calls", result.run_id), ["notify", "send", "call", "read"])
    sent = boto3.client("sqs").receive_message(QueueUrl=QUEUE, MessageAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in sent] == ["plain body"]
    assert values["send"] == {"MessageId": sent[0]["MessageId"], "MD5OfMessageBody": sent[0]["MD5OfBody"]}
    from moto.sns import sns_backends

    (published,) = sns_backends["123456789012"]["us-east-1"].topics[TOPIC].sent_notifications
    message_id, message, subject, attributes, _ = published
    assert values["notify"] == {"MessageId": message_id}
    run = local.store.get_run(RunKey("calls", result.run_id))
    # rendered, and sent as the provider sends it (MessageStructure json, its "default" message)
    assert (json.loads(message), subject) == ({"default": f"done on {run.logical_date[:10]}: 41"}, "finished")
    assert attributes == {"rows": {"Type": "Number", "Value": "3"}, "kind": {"Type": "String", "Value": "daily"}}
    assert CALLED == [{"a": 41}]
    assert values["call"] == '{"sum": 42}'  # the payload as JSON text, as Airflow's operator returns it
    assert values["read"] == [values["call"]]  # downstream tasks pull it as from any task
    assert notes.read_text() == "call 1 None\n"  # its success callback ran (on the executor)
    # a call whose fields hold no template runs no task code: the executor only rendered notify and call
    executed = [c.params["FunctionName"] for c in local.session.calls if c.operation == "Invoke"]
    tried = [
        json.loads(c.params["Payload"])["task_id"]
        for c in local.session.calls
        if c.operation == "Invoke"
        and c.params["FunctionName"] == local.names.execute_task
        and b"callback" not in c.params["Payload"]
    ]
    assert sorted(tried) == ["call", "make", "notify", "read"], executed


def test_a_failing_call_fails_its_try_with_the_services_error_and_retries(local, calls_file):
    path, notes = calls_file
    model, source = load_model(path, "failures")
    result = local.run(model, source, RunRequest(fast_retries=True))
    assert result.state == "failed"
    ti = instances(local, result)
    states = {task_id: (t.state.value, t.try_number) for task_id, t in ti.items()}
    assert states == {
        "raises": ("failed", 2),  # the function's error, each try, then no retry left
        "flaky": ("success", 2),  # its first call failed, the retry's succeeded
        "slow": ("failed", 1),
        "nowhere": ("failed", 1),
        "after": ("upstream_failed", 0),  # never called
        "anyway": ("success", 1),  # all_done: called after its upstream failed
    }
    assert ti["raises"].error == "ValueError: asked to fail (always)"
    assert ti["slow"].error == "AirflowTaskTimeout: the call ran past execution_timeout (1 s)"
    assert ti["nowhere"].error.startswith("SNS.NotFoundException: ")
    assert notes.read_text().splitlines() == [
        "raises 1 ValueError: asked to fail (always)",  # on_retry_callback
        "raises 2 ValueError: asked to fail (always)",  # on_failure_callback
    ]
    assert local.store.get_xcoms(RunKey("failures", result.run_id), ["flaky"])["flaky"] == '{"sum": 2}'
    bodies = [
        m["Body"] for m in boto3.client("sqs").receive_message(QueueUrl=QUEUE, MaxNumberOfMessages=10)["Messages"]
    ]
    assert bodies == ["sent anyway"]


def test_the_example_runs_with_its_function_given_and_fails_by_name_without_it():
    example, function = EXAMPLES / "aws_calls.py", ROOT / "examples" / "functions" / "score.py"
    ran = airstep("run", str(example), "--json", "--lambda", f"score={function}:handler")
    assert ran.returncode == 0, ran.stderr
    assert {t["state"] for t in json.loads(ran.stdout)["tasks"]} == {"success"}
    alone = airstep("run", str(example), "--fast-retries")
    assert alone.returncode == 1
    said = " ".join((alone.stdout + alone.stderr).split())
    assert "score (try 3): Lambda.ResourceNotFoundException: Function not found: score" in said
    assert "--lambda score=FILE.py:FUNCTION" in said


def test_compile_writes_the_policy_the_dags_role_gets_beside_its_definition(tmp_path):
    compiled = airstep("compile", str(EXAMPLES / "aws_calls.py"), "-o", str(tmp_path))
    assert compiled.returncode == 0, compiled.stderr
    policy = json.loads((tmp_path / "aws_calls.policy.json").read_text())
    assert {"glue:StartJobRun", "sns:Publish", "s3:ListBucket"} <= {a for s in policy["Statement"] for a in s["Action"]}
    assert f"IAM: {tmp_path / 'aws_calls.policy.json'}: its role may make" in " ".join(compiled.stdout.split())
    plain = airstep("compile", str(EXAMPLES / "fan_out_fan_in.py"), "-o", str(tmp_path))
    assert plain.returncode == 0 and not (tmp_path / "fan_out_fan_in.policy.json").exists()  # the shared role


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("score=nowhere.py:handler", "no file nowhere.py"),
        ("score", "expected NAME=FILE.py:FUNCTION"),
        (f"score={ROOT / 'examples' / 'functions' / 'score.py'}:missing", "has no function 'missing'"),
    ],
)
def test_a_lambda_option_that_names_no_handler_says_why(spec, says):
    from airstep_local.services import FunctionSpecError, local_function

    with pytest.raises(FunctionSpecError, match=f"--lambda '{re.escape(spec)}': .*{re.escape(says)}"):
        local_function(spec)


UNTRANSLATED = """\
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator

with DAG("untranslated", start_date=datetime(2026, 1, 1), schedule=None):
    SnsPublishOperator(task_id="b", target_arn="arn:aws:sns:us-east-1:1:t", message="m", deferrable=True)
"""
OTHER_CREDENTIALS = """\
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.sqs import SqsPublishOperator

with DAG("other_credentials", start_date=datetime(2026, 1, 1), schedule=None):
    SqsPublishOperator(task_id="a", sqs_queue="https://sqs.us-east-1.amazonaws.com/1/q", message_content="m",
                       aws_conn_id="prod")
"""


def test_compat_names_what_of_the_amazon_provider_airstep_does_not_translate(tmp_path):
    (tmp_path / "untranslated.py").write_text(UNTRANSLATED)
    (tmp_path / "other_credentials.py").write_text(OTHER_CREDENTIALS)
    proc = airstep("compat", str(tmp_path))
    assert proc.returncode == 1
    untranslated, other = tmp_path / "untranslated.py", tmp_path / "other_credentials.py"
    assert f"{untranslated}:3: `airflow.providers.amazon.aws.operators.sagemaker` is not supported" in proc.stdout
    assert f"{untranslated}:7: `SnsPublishOperator(deferrable=...)` is not supported" in proc.stdout
    assert f"{other}:6: SqsPublishOperator 'a': aws_conn_id is not translated by airstep" in proc.stdout


EDGES = """
from datetime import datetime, timedelta
from airflow.sdk import DAG, Param
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.operators.sqs import SqsPublishOperator

with DAG("delivered_twice", schedule=None, start_date=datetime(2026, 1, 1)):
    SnsPublishOperator(task_id="lost", target_arn="{{ 'arn:aws:sns:us-east-1:123456789012:missing' }}", message="m",
                       retries=2, retry_delay=timedelta(seconds=1))

with DAG("checked", schedule=None, start_date=datetime(2026, 1, 1), params={"n": Param(1, type="integer", minimum=1)}):
    SqsPublishOperator(task_id="send", sqs_queue="https://sqs.us-east-1.amazonaws.com/111122223333/orders.fifo",
                       message_content="m", message_group_id="g", message_deduplication_id="d")

with DAG("kinds", schedule=None, start_date=datetime(2026, 1, 1)):
    SnsPublishOperator(task_id="fifo", target_arn="arn:aws:sns:us-east-1:123456789012:events.fifo", message="m",
                       message_group_id="g", message_deduplication_id="d")
    LambdaInvokeFunctionOperator(task_id="queued", function_name="adder", payload='{"a": 1}', invocation_type="Event")
    LambdaInvokeFunctionOperator(task_id="dry", function_name="adder", payload='{"a": 2}', invocation_type="DryRun")
"""


@pytest.fixture
def edges(tmp_path: Path) -> Path:
    path = tmp_path / "edges.py"
    path.write_text(EDGES)
    return path


def test_a_run_step_or_record_step_delivered_twice_uses_no_try_and_loses_no_retry(local, edges):
    from airstep_local.faults import Faults

    def twice(function: str, event: dict[str, Any]) -> bool:  # every delivery of the task runner's, for `lost`
        return function == local.names.run_task and event.get("task_id") == "lost"

    local.session.faults = Faults(duplicate=twice)
    model, source = load_model(edges, "delivered_twice")
    result = local.run(model, source, RunRequest(fast_retries=True))
    (ti,) = instances(local, result).values()
    assert (ti.state.value, ti.try_number) == ("failed", 3), ti.error
    assert ti.error.startswith("SNS.NotFoundException")
    assert sum(1 for c in local.session.calls if c.operation == "Publish") == 3  # one call per try
    assert local.session.faults.injected["lambda:duplicate"] >= 6


def test_params_are_checked_before_a_call_with_nothing_to_render_and_fifo_queues_take_it(local, edges):
    model, source = load_model(edges, "checked")
    request = RunRequest(conf={"n": 0})  # (refused when a run is created: the runner checks again, as a task does)
    machine = local.deploy(model, source, request, check_conf=False)
    refused = local._start_run(machine, local._run_of(model, request))
    local.finish(refused)
    (ti,) = [t for t in local.store.task_instances(RunKey("checked", refused.run_id))]
    assert (ti.state.value, ti.try_number) == ("failed", 1) and "n" in ti.error
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo"  # made here, in the local account
    assert "Messages" not in boto3.client("sqs").receive_message(QueueUrl=queue)
    sent = local.run(model, source, RunRequest(conf={"n": 2}))
    assert sent.state == "success"
    (message,) = boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"]
    assert message["Body"] == "m"
    xcom = local.store.get_xcoms(RunKey("checked", sent.run_id), ["send"])["send"]
    assert "MessageId" in xcom and set(xcom) <= {"MessageId", "MD5OfMessageBody", "SequenceNumber"}


def test_fifo_topics_and_lambdas_invoked_asynchronously_or_dry(local, edges):
    model, source = load_model(edges, "kinds")
    result = local.run(model, source, RunRequest())
    assert result.state == "success", [(t.task_id, t.error) for t in instances(local, result).values()]
    values = local.store.get_xcoms(RunKey("kinds", result.run_id), ["fifo", "queued", "dry"])
    assert "MessageId" in values["fifo"] and set(values["fifo"]) <= {"MessageId", "SequenceNumber"}
    assert (values["queued"], values["dry"]) == ("", "")  # as Airflow returns an empty payload
    assert CALLED == [{"a": 1}]  # the asynchronous one ran, the dry run did not


STARTS = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.step_function import StepFunctionStartExecutionOperator

with DAG("starts", schedule=None, start_date=datetime(2026, 1, 1)):
    fire = StepFunctionStartExecutionOperator(task_id="fire", state_machine_arn=CHILD, state_machine_input='{"n": 1}')
    fire >> StepFunctionStartExecutionOperator(task_id="again", state_machine_arn=CHILD)  # unnamed, as fire
    StepFunctionStartExecutionOperator(task_id="wait", state_machine_arn=CHILD, deferrable=True,
                                       state_machine_input={"day": "{{ ds }}"}, name="day-{{ ds_nodash }}")
    StepFunctionStartExecutionOperator(task_id="broken", state_machine_arn=BROKEN, deferrable=True)
"""


def test_an_execution_started_returns_its_arn_and_deferrable_waits_for_it_to_end(local, tmp_path):
    sfn = boto3.client("stepfunctions")

    def machine(name: str, state: dict[str, Any]) -> str:
        definition = json.dumps({"StartAt": "only", "States": {"only": {**state, "End": True}}})
        role = "arn:aws:iam::123456789012:role/child"
        return sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"]

    child = machine("child", {"Type": "Pass"})
    broken = machine(
        "broken",
        {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "nowhere"}},
    )
    path = tmp_path / "starts.py"
    path.write_text(f"CHILD = {child!r}\nBROKEN = {broken!r}\n" + STARTS)
    model, source = load_model(path, "starts")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: (i.state.value, i.try_number) for t, i in ti.items()} == {
        "fire": ("success", 1),
        "again": ("success", 1),
        "wait": ("success", 1),
        "broken": ("failed", 1),
    }
    values = local.store.get_xcoms(RunKey("starts", result.run_id), ["fire", "again", "wait"])
    assert values["fire"] != values["again"]  # each execution AWS started without a name has one of its own
    fired, waited = (
        sfn.describe_execution(executionArn=values["fire"]),
        sfn.describe_execution(executionArn=values["wait"]),
    )
    assert json.loads(fired["input"]) == {"n": 1}
    run = local.store.get_run(RunKey("starts", result.run_id))
    assert (waited["name"], json.loads(waited["input"])) == (
        f"day-{run.logical_date[:10].replace('-', '')}",
        {"day": run.logical_date[:10]},
    )
    assert waited["status"] == "SUCCEEDED"  # the task ended when the execution did
    assert ti["broken"].error.startswith("States.TaskFailed")


GLUE = """
from datetime import datetime, timedelta
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

with DAG("glue", schedule=None, start_date=datetime(2026, 1, 1)):
    transform = GlueJobOperator(task_id="transform", job_name="nightly", script_args={"--day": "{{ ds }}"},
                                run_job_kwargs={"NumberOfWorkers": 2, "WorkerType": "G.1X"})
    kick = GlueJobOperator(task_id="kick", job_name="nightly", wait_for_completion=False)
    broken = GlueJobOperator(task_id="broken", job_name="breaks", retries=1, retry_delay=timedelta(seconds=1))
    missing = GlueJobOperator(task_id="missing", job_name="{{ 'nowhere' }}")

    @task
    def report(ti=None):
        return ti.xcom_pull(["transform", "kick"])

    [transform, kick] >> report()
"""


def test_a_glue_job_run_is_waited_for_and_its_failure_fails_the_try_with_glues_words(local, tmp_path, monkeypatch):
    from moto.glue import glue_backends
    from moto.glue.models import FakeJobRun

    made = FakeJobRun.__init__

    def runs_that_fail_for_breaks(self: Any, job_name: str, *args: Any, **kwargs: Any) -> None:
        made(self, job_name, *args, **kwargs)
        if job_name == "breaks":  # moto's job runs all succeed: this job's fail, as a failing script's would
            self._transitions = [("STARTING", "RUNNING"), ("RUNNING", "FAILED")]

    monkeypatch.setattr(FakeJobRun, "__init__", runs_that_fail_for_breaks)
    path = tmp_path / "glue.py"
    path.write_text(GLUE)
    model, source = load_model(path, "glue")
    result = local.run(model, source, RunRequest(fast_retries=True))
    ti = instances(local, result)
    assert {t: (i.state.value, i.try_number) for t, i in ti.items()} == {
        "transform": ("success", 1),
        "kick": ("success", 1),
        "broken": ("failed", 2),  # each try a new run of the job
        "missing": ("failed", 1),
        "report": ("success", 1),
    }
    jobs = glue_backends["123456789012"]["us-east-1"].jobs  # the jobs named at compile time, made in moto
    (waited,) = [r for r in jobs["nightly"].job_runs if r.arguments]
    (started,) = [r for r in jobs["nightly"].job_runs if not r.arguments]
    run = local.store.get_run(RunKey("glue", result.run_id))
    assert (waited.arguments, waited.number_of_workers, waited.worker_type) == (
        {"--day": run.logical_date[:10]},
        2,
        "G.1X",
    )
    values = local.store.get_xcoms(RunKey("glue", result.run_id), ["transform", "kick", "report"])
    assert values == {"transform": waited.job_run_id, "kick": started.job_run_id, "report": list(values.values())[:2]}
    assert waited.status == "SUCCEEDED"  # the task ended when the run did
    assert len(jobs["breaks"].job_runs) == 2
    assert re.fullmatch(r"States\.TaskFailed: Glue job run jr_\w+ of breaks ended FAILED", ti["broken"].error)
    assert ti["missing"].error == "Glue.EntityNotFoundException: Job nowhere not found."


CRAWLS = """
from datetime import datetime, timedelta
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator, GlueCrawlerRunOperator

with DAG("crawls", schedule=None, start_date=datetime(2026, 1, 1)):
    GlueCrawlerRunOperator(task_id="catalog", crawler_name="{{ 'events' }}", poll_interval=1)
    GlueCrawlerOperator(task_id="legacy", config={"Name": "legacy", "Role": "r", "Targets": {}}, poll_interval=1)
    GlueCrawlerRunOperator(task_id="broken", crawler_name="breaks", poll_interval=1)
    GlueCrawlerRunOperator(task_id="slow", crawler_name="never-done", poll_interval=1,
                           execution_timeout=timedelta(seconds=3))
"""


def test_a_crawler_is_checked_on_until_ready_and_a_failed_or_endless_crawl_fails_the_try(local, tmp_path, monkeypatch):
    from moto.glue.models import FakeCrawl

    made = FakeCrawl.__init__
    ends = {"breaks": [("RUNNING", "FAILED")], "never-done": [("RUNNING", "RUNNING")]}

    def crawls_as_named(self: Any, crawler_name: str) -> None:
        made(self, crawler_name)
        self._transitions = ends.get(crawler_name, self._transitions)  # moto's crawls all succeed

    monkeypatch.setattr(FakeCrawl, "__init__", crawls_as_named)
    glue = boto3.client("glue", region_name="us-east-1")
    glue.create_crawler(Name="events", Role="r", Targets={"S3Targets": [{"Path": "s3://b/e/"}]})  # named by a template
    path = tmp_path / "crawls.py"
    path.write_text(CRAWLS)
    model, source = load_model(path, "crawls")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: (i.state.value, i.try_number) for t, i in ti.items()} == {
        "catalog": ("success", 1),
        "legacy": ("success", 1),
        "broken": ("failed", 1),
        "slow": ("failed", 1),
    }
    values = local.store.get_xcoms(RunKey("crawls", result.run_id), ["catalog", "legacy"])
    assert values == {"catalog": "events", "legacy": "legacy"}  # the crawler's name, as the provider returns it
    assert ti["broken"].error == "WaiterError: Crawler FAILED"  # as the provider's waiter raises it
    assert ti["slow"].error == "AirflowTaskTimeout: still RUNNING at execution_timeout (3 s)"
    assert glue.get_crawler(Name="events")["Crawler"]["LastCrawl"]["Status"] == "COMPLETED"  # it did crawl, in moto


OBJECTS = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.s3 import (
    S3CopyObjectOperator, S3CreateObjectOperator, S3DeleteObjectsOperator
)

with DAG("objects", schedule=None, start_date=datetime(2026, 1, 1)):
    make = S3CreateObjectOperator(task_id="make", s3_key="s3://lake/raw/{{ ds }}.csv", data="a,b\\n1,2\\n")
    again = S3CreateObjectOperator(task_id="again", s3_bucket="lake", s3_key="raw/{{ ds }}.csv", data="other")
    copy = S3CopyObjectOperator(task_id="copy", source_bucket_key="s3://lake/raw/{{ ds }}.csv",
                                dest_bucket_key="clean/{{ ds }}.csv", dest_bucket_name="lake")
    drop = S3DeleteObjectsOperator(task_id="drop", bucket="lake", keys=["raw/{{ ds }}.csv"])
    make >> again
    make >> copy >> drop
"""


def test_objects_are_written_refused_when_present_copied_and_deleted(local, tmp_path):
    path = tmp_path / "objects.py"
    path.write_text(OBJECTS)
    model, source = load_model(path, "objects")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: (i.state.value, i.try_number) for t, i in ti.items()} == {
        "make": ("success", 1),
        "again": ("failed", 1),  # replace=False: the object exists, as the provider refuses it
        "copy": ("success", 1),
        "drop": ("success", 1),
    }
    day = local.store.get_run(RunKey("objects", result.run_id)).logical_date[:10]
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
    assert keys == [f"clean/{day}.csv"]  # copied, then the original deleted
    assert s3.get_object(Bucket="lake", Key=f"clean/{day}.csv")["Body"].read() == b"a,b\n1,2\n"
    assert "412" in ti["again"].error
    assert local.store.get_xcoms(RunKey("objects", result.run_id), ["make", "copy", "drop"]) == {}


BUSY = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerRunOperator

with DAG("busy", schedule=None, start_date=datetime(2026, 1, 1)):
    GlueCrawlerRunOperator(task_id="joins", crawler_name="busy", poll_interval=1, fail_on_already_running=False)
    GlueCrawlerRunOperator(task_id="refuses", crawler_name="also-busy", poll_interval=1, retries=0)
"""


def test_a_crawler_already_running_is_waited_for_only_when_asked(local, tmp_path, monkeypatch):
    from moto.glue.models import FakeCrawl
    from moto.moto_api import state_manager

    made = FakeCrawl.__init__

    def slow_crawls(self: Any, crawler_name: str) -> None:
        made(self, crawler_name)
        self.model_name = "airstep-test::slow-crawl"  # this crawl runs for two seconds

    state_manager.set_transition("airstep-test::slow-crawl", {"progression": "time", "seconds": 2})
    monkeypatch.setattr(FakeCrawl, "__init__", slow_crawls)
    glue = boto3.client("glue", region_name="us-east-1")
    for name in ("busy", "also-busy"):
        glue.create_crawler(Name=name, Role="r", Targets={"S3Targets": [{"Path": f"s3://b/{name}/"}]})
        glue.start_crawler(Name=name)  # started by someone else just before the run
    path = tmp_path / "busy.py"
    path.write_text(BUSY)
    model, source = load_model(path, "busy")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: i.state.value for t, i in ti.items()} == {"joins": "success", "refuses": "failed"}
    assert ti["refuses"].error.startswith("Glue.CrawlerRunningException: ")  # as AWS names it
    assert glue.get_crawler(Name="busy")["Crawler"]["State"] == "READY"  # the task ended once that crawl did


QUERIES = """
from datetime import datetime, timedelta
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.athena import AthenaOperator

with DAG("queries", schedule=None, start_date=datetime(2026, 1, 1), template_searchpath=[SQL]):
    daily = AthenaOperator(task_id="daily", query="daily.sql", database="lake", workgroup="analysts",
                           output_location="s3://results/athena")
    broken = AthenaOperator(task_id="broken", query="SELECT boom", retries=1, retry_delay=timedelta(seconds=0))
    nowhere = AthenaOperator(task_id="nowhere", query="SELECT 1", workgroup="{{ 'missing' }}")

    @task
    def report(ran):
        return ran

    report(daily.output)
"""


def test_a_query_is_waited_for_and_its_failure_fails_the_try_with_athenas_reason(local, tmp_path, monkeypatch):
    from moto.athena import athena_backends
    from moto.athena.models import Execution

    made = Execution.__init__

    def queries_that_fail_for_boom(self: Any, query: str, *args: Any, **kwargs: Any) -> None:
        made(self, query, *args, **kwargs)
        if "boom" in query:  # moto's queries all succeed: this one fails, as a query of a missing table would
            self._transitions = [("QUEUED", "RUNNING"), ("RUNNING", "FAILED")]
            self.state_change_reason = "TABLE_NOT_FOUND: line 1:13: Table 'boom' does not exist"

    monkeypatch.setattr(Execution, "__init__", queries_that_fail_for_boom)
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "daily.sql").write_text("SELECT count(*) FROM events WHERE day = '{{ ds }}'")
    path = tmp_path / "queries.py"
    path.write_text(f"SQL = {str(sql)!r}\n" + QUERIES)
    model, source = load_model(path, "queries")
    result = local.run(model, source, RunRequest(fast_retries=True))
    ti = instances(local, result)
    assert {t: (i.state.value, i.try_number) for t, i in ti.items()} == {
        "daily": ("success", 1),
        "broken": ("failed", 2),  # each try a new query
        "nowhere": ("failed", 1),
        "report": ("success", 1),
    }
    executions = athena_backends["123456789012"]["us-east-1"].executions
    (daily,) = [e for e in executions.values() if "events" in e.query]
    day = local.store.get_run(RunKey("queries", result.run_id)).logical_date[:10]
    assert daily.query == f"SELECT count(*) FROM events WHERE day = '{day}'"  # the file, rendered by the try
    assert (daily.context, daily.workgroup.name) == ({"Database": "lake", "Catalog": "AwsDataCatalog"}, "analysts")
    assert daily.status == "SUCCEEDED"  # the task ended when the query did
    values = local.store.get_xcoms(RunKey("queries", result.run_id), ["daily", "report"])
    assert values == {"daily": daily.id, "report": daily.id}
    assert sum(1 for e in executions.values() if "boom" in e.query) == 2
    assert re.fullmatch(
        r"States\.TaskFailed: Athena query [\w-]+ ended FAILED: TABLE_NOT_FOUND: line 1:13: Table 'boom' "
        r"does not exist",
        ti["broken"].error,
    )
    assert ti["nowhere"].error == "Athena.InvalidRequestException: WorkGroup missing is not found."


SENSORS = """
from datetime import datetime, timedelta
import time
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.sensors.glue import GlueJobSensor
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

with DAG("sensors", schedule=None, start_date=datetime(2026, 1, 1), default_args={"retries": 2}):
    @task
    def drop():
        import boto3
        time.sleep(2)  # the sensors below have poked by now
        boto3.client("s3").put_object(Bucket="lake", Key="in/{}.csv".format("2026"), Body=b"1")

    key = S3KeySensor(task_id="key", bucket_key="s3://lake/in/{{ '2026' }}.csv", poke_interval=1, timeout=30)
    prefix = S3KeySensor(task_id="prefix", bucket_key="in/20*", bucket_name="lake", wildcard_match=True,
                         poke_interval=1, timeout=30, deferrable=True)
    never = S3KeySensor(task_id="never", bucket_key="s3://lake/in/2026.csv.done", poke_interval=1, timeout=2)
    soft = S3KeySensor(task_id="soft", bucket_key="s3://lake/nothing", poke_interval=1, timeout=1, soft_fail=True)

    @task
    def after_soft():
        return "never runs"

    soft >> after_soft()
    drop()
    started = GlueJobOperator(task_id="start", job_name="nightly", wait_for_completion=False)
    GlueJobSensor(task_id="ran", job_name="nightly", run_id=started.output, poke_interval=1)
    broken = GlueJobOperator(task_id="start_broken", job_name="breaks", wait_for_completion=False, retries=0)
    GlueJobSensor(task_id="broke", job_name="breaks", run_id=broken.output, poke_interval=1, retries=0)
"""


def test_sensors_standing_alone_poke_with_describe_calls_and_end_as_airflows_do(local, tmp_path, monkeypatch):
    from moto.glue.models import FakeJobRun

    made = FakeJobRun.__init__

    def runs_that_fail_for_breaks(self: Any, job_name: str, *args: Any, **kwargs: Any) -> None:
        made(self, job_name, *args, **kwargs)
        if job_name == "breaks":
            self._transitions = [("STARTING", "RUNNING"), ("RUNNING", "FAILED")]

    monkeypatch.setattr(FakeJobRun, "__init__", runs_that_fail_for_breaks)
    boto3.client("s3").create_bucket(Bucket="lake")
    path = tmp_path / "sensors.py"
    path.write_text(SENSORS)
    model, source = load_model(path, "sensors")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: (i.state.value, i.try_number) for t, i in ti.items()} == {
        "drop": ("success", 1),
        "key": ("success", 1),  # it poked until the key was there
        "prefix": ("success", 1),
        "never": ("failed", 1),  # a sensor's timeout takes no retry, as in Airflow
        "soft": ("skipped", 1),  # soft_fail
        "after_soft": ("skipped", 0),
        "start": ("success", 1),
        "ran": ("success", 1),
        "start_broken": ("success", 1),
        "broke": ("failed", 1),
    }
    for waited in (ti["key"], ti["prefix"]):  # they poked before the key was written, and saw it once it was
        assert waited.duration is not None and 1.5 <= waited.duration < 10
    assert ti["never"].error.startswith("AirflowSensorTimeout: Sensor has timed out after about 3 s; ")
    assert ti["broke"].error == "AirflowException: JobRun FAILED"
    assert local.store.get_xcoms(RunKey("sensors", result.run_id), ["key", "ran"]) == {}  # sensors push nothing


STATEMENTS = """
from datetime import datetime
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator

with DAG("statements", schedule=None, start_date=datetime(2026, 1, 1)):
    load = RedshiftDataOperator(task_id="load", sql="INSERT INTO daily SELECT * FROM staging WHERE day = '{{ ds }}'",
                                database="dev", cluster_identifier="warehouse", db_user="etl", poll_interval=1)
    batch = RedshiftDataOperator(task_id="batch", sql=["DELETE FROM t", "INSERT INTO t VALUES (1)"], database="dev",
                                 workgroup_name="analytics", poll_interval=1)
    broken = RedshiftDataOperator(task_id="broken", sql="SELECT boom", database="dev", cluster_identifier="warehouse",
                                  poll_interval=1)

    @task
    def report(loaded, batched):
        return {"loaded": loaded, "batched": batched}

    report(load.output, batch.output)
"""


def test_a_statement_is_described_until_it_ends_and_its_ids_are_the_xcom(local, tmp_path, monkeypatch):
    from moto.redshiftdata import models

    path = tmp_path / "statements.py"
    path.write_text(STATEMENTS)
    model, source = load_model(path, "statements")
    local.deploy(model, source, RunRequest())  # (the stand-ins for the statements are in place from here)
    finishes = models.Statement.__init__

    def booms_fail(self: Any, *args: Any, **kwargs: Any) -> None:
        finishes(self, *args, **kwargs)
        if "boom" in (kwargs.get("query_string") or ""):  # moto runs no SQL: this one fails as a bad query would
            self.status = "FAILED"
            self.error = 'ERROR: column "boom" does not exist'

    monkeypatch.setattr(models.Statement, "__init__", booms_fail)
    monkeypatch.setattr(models.Statement, "__iter__", _with_error(models.Statement.__iter__))
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: i.state.value for t, i in ti.items()} == {
        "load": "success",
        "batch": "success",
        "broken": "failed",
        "report": "success",
    }
    statements = models.redshiftdata_backends["123456789012"]["us-east-1"].statements
    (loaded,) = [s for s in statements.values() if s.query_string.startswith("INSERT INTO daily")]
    day = local.store.get_run(RunKey("statements", result.run_id)).logical_date[:10]
    assert loaded.query_string.endswith(f"'{day}'") and loaded.db_user == "etl"  # rendered when the try began
    (batched,) = [s for s in statements.values() if s.sub_statements]
    values = local.store.get_xcoms(RunKey("statements", result.run_id), ["report"])["report"]
    assert values == {"loaded": [loaded.id], "batched": [f"{batched.id}:1", f"{batched.id}:2"]}
    assert ti["broken"].error == 'RedshiftDataQueryFailedError: Status FAILED: ERROR: column "boom" does not exist'


def _with_error(iterate: Any) -> Any:
    def iterated(self: Any) -> Any:
        yield from iterate(self)
        if getattr(self, "error", None):
            yield "Error", self.error

    return iterated


WATCHED = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.sensors.athena import AthenaSensor

with DAG("watched", schedule=None, start_date=datetime(2026, 1, 1)):
    count = AthenaOperator(task_id="count", query="SELECT 1", deferrable=True, sleep_time=1)
    AthenaSensor(task_id="counted", query_execution_id=count.output, sleep_time=1)
    AthenaSensor(task_id="broke", query_execution_id=BROKEN, sleep_time=1)
    AthenaSensor(task_id="lost", query_execution_id="00000000-0000-0000-0000-000000000000", sleep_time=1)
"""


def test_an_athena_sensor_describes_the_query_until_it_ends(local, tmp_path, monkeypatch):
    from moto.athena import athena_backends
    from moto.athena.models import Execution

    made = Execution.__init__

    def queries_that_fail_for_boom(self: Any, query: str, *args: Any, **kwargs: Any) -> None:
        made(self, query, *args, **kwargs)
        if "boom" in query:
            self._transitions = [("QUEUED", "RUNNING"), ("RUNNING", "FAILED")]
            self.state_change_reason = "TABLE_NOT_FOUND"

    monkeypatch.setattr(Execution, "__init__", queries_that_fail_for_boom)
    backend = athena_backends["123456789012"]["us-east-1"]
    broken = backend.start_query_execution("SELECT boom", {}, {}, "primary", None)  # started outside the DAG
    path = tmp_path / "watched.py"
    path.write_text(f"BROKEN = {broken!r}\n" + WATCHED)
    model, source = load_model(path, "watched")
    result = local.run(model, source, RunRequest(fast_retries=True))  # (`lost`: its describe call's retries)
    ti = instances(local, result)
    assert {t: i.state.value for t, i in ti.items()} == {
        "count": "success",
        "counted": "success",
        "broke": "failed",
        "lost": "failed",
    }
    assert ti["broke"].error == "AirflowException: QueryExecution FAILED: TABLE_NOT_FOUND"
    assert ti["lost"].error.startswith(
        "Athena.InvalidRequestException: QueryExecution 00000000-0000-0000-0000-000000000000 was not found"
    )


CONTAINERS = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

def command(*args):
    return {"containerOverrides": [{"name": "main", "command": list(args)}]}

with DAG("containers", schedule=None, start_date=datetime(2026, 1, 1)):
    EcsRunTaskOperator(task_id="ok", cluster="etl", task_definition="job", launch_type="FARGATE",
                       overrides=command("python", "job.py", "{{ ds }}"))
    EcsRunTaskOperator(task_id="exits_1", cluster="etl", task_definition="job", overrides=command("exit", "1"),
                       retries=1, retry_delay=0)
    EcsRunTaskOperator(task_id="exits_3", cluster="etl", task_definition="job", overrides=command("exit", "3"),
                       skip_on_exit_code=[3])
"""


def test_an_ecs_task_is_waited_for_and_its_exit_code_decides_the_try(local, tmp_path, monkeypatch):
    from airstep_local import sync_integrations

    def exit_code(request: dict[str, Any]) -> int:  # the container's command decides, as a real one's would
        command = request["Overrides"]["ContainerOverrides"][0]["Command"]
        return int(command[1]) if command[0] == "exit" else 0

    monkeypatch.setattr(sync_integrations, "ecs_exit_code", exit_code)
    monkeypatch.setattr(sync_integrations, "ECS_RUNS", [])
    path = tmp_path / "containers.py"
    path.write_text(CONTAINERS)
    model, source = load_model(path, "containers")
    result = local.run(model, source, RunRequest(fast_retries=True))
    ti = instances(local, result)
    assert {t: (i.state.value, i.try_number) for t, i in ti.items()} == {
        "ok": ("success", 1),
        "exits_1": ("failed", 2),  # each try a new task
        "exits_3": ("skipped", 1),  # skip_on_exit_code
    }
    assert (
        ti["exits_1"].error == "AirflowException: EcsRunTaskOperator's work ended 1: Essential container in task exited"
    )
    (ok,) = [
        run
        for run in sync_integrations.ECS_RUNS
        if run["request"]["Overrides"]["ContainerOverrides"][0]["Command"][0] == "python"
    ]
    day = local.store.get_run(RunKey("containers", result.run_id)).logical_date[:10]
    assert ok["request"]["Overrides"]["ContainerOverrides"][0]["Command"] == ["python", "job.py", day]  # rendered
    assert ok["request"]["LaunchType"] == "FARGATE"
    pushed = local.store.get_xcoms(RunKey("containers", result.run_id), ["ok"], key="ecs_task_arn")
    assert pushed == {"ok": ok["task"]["TaskArn"]}
    assert local.store.get_xcoms(RunKey("containers", result.run_id), ["ok"]) == {}  # no return value


JOBS = """
from datetime import datetime
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.providers.amazon.aws.sensors.batch import BatchSensor

with DAG("jobs", schedule=None, start_date=datetime(2026, 1, 1)):
    nightly = BatchOperator(task_id="nightly", job_name="nightly", job_queue="etl", job_definition="nightly",
                            container_overrides={"command": ["python", "run.py", "{{ ds }}"]})
    broken = BatchOperator(task_id="broken", job_name="broken", job_queue="etl", job_definition="nightly")
    later = BatchOperator(task_id="later", job_name="later", job_queue="etl", job_definition="nightly",
                          wait_for_completion=False)
    BatchSensor(task_id="watched", job_id=later.output, poke_interval=1)
    elsewhere = BatchOperator(task_id="elsewhere", job_name="broken", job_queue="etl", job_definition="nightly",
                              wait_for_completion=False)
    BatchSensor(task_id="watched_broken", job_id=elsewhere.output, poke_interval=1)

    @task
    def report(job_id):
        return job_id

    report(nightly.output)
"""


def test_a_batch_job_is_waited_for_and_its_failure_fails_the_try_with_batchs_reason(local, tmp_path, monkeypatch):
    from airstep_local import sync_integrations

    def status(request: dict[str, Any]) -> tuple[str, str]:
        return ("FAILED", "Essential container in task exited") if request["JobName"] == "broken" else ("SUCCEEDED", "")

    monkeypatch.setattr(sync_integrations, "batch_status", status)
    monkeypatch.setattr(sync_integrations, "BATCH_JOBS", [])
    path = tmp_path / "jobs.py"
    path.write_text(JOBS)
    model, source = load_model(path, "jobs")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: i.state.value for t, i in ti.items()} == {
        "nightly": "success",
        "broken": "failed",
        "report": "success",
        "later": "success",
        "watched": "success",  # a BatchSensor on a job submitted without waiting
        "elsewhere": "success",
        "watched_broken": "failed",
    }
    assert ti["watched_broken"].error == "AirflowException: Jobs FAILED: Essential container in task exited"
    (nightly,) = [job for job in sync_integrations.BATCH_JOBS if job["request"]["JobName"] == "nightly"]
    day = local.store.get_run(RunKey("jobs", result.run_id)).logical_date[:10]
    assert nightly["request"]["ContainerOverrides"]["Command"] == ["python", "run.py", day]  # rendered
    assert local.store.get_xcoms(RunKey("jobs", result.run_id), ["report"]) == {"report": nightly["job"]["JobId"]}
    assert re.fullmatch(
        r"States\.TaskFailed: Batch job [\w-]+ \(broken\) ended FAILED: Essential container in task exited",
        ti["broken"].error,
    )


SPARK = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

with DAG("spark", schedule=None, start_date=datetime(2026, 1, 1)):
    EmrServerlessStartJobOperator(
        task_id="spark", application_id=APP, execution_role_arn="arn:aws:iam::123456789012:role/emr",
        job_driver={"sparkSubmit": {"entryPoint": "s3://code/job.py", "entryPointArguments": ["{{ ds }}"]}},
        configuration_overrides={"applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {"spark.executor.memory": "2g"}}]},
        waiter_delay=1)
    EmrServerlessStartJobOperator(task_id="nowhere", application_id="missing", retries=0,
                                  execution_role_arn="arn:aws:iam::123456789012:role/emr", job_driver={})
"""


def test_an_emr_serverless_job_run_is_waited_for_and_its_id_is_the_xcom(local, tmp_path):
    emr = boto3.client("emr-serverless", region_name="us-east-1")
    app = emr.create_application(name="etl", releaseLabel="emr-7.0.0", type="SPARK")["applicationId"]
    path = tmp_path / "spark.py"
    path.write_text(f"APP = {app!r}\n" + SPARK)
    model, source = load_model(path, "spark")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: i.state.value for t, i in ti.items()} == {"spark": "success", "nowhere": "failed"}
    (run,) = emr.list_job_runs(applicationId=app)["jobRuns"]
    assert local.store.get_xcoms(RunKey("spark", result.run_id), ["spark"]) == {"spark": run["id"]}
    started = emr.get_job_run(applicationId=app, jobRunId=run["id"])["jobRun"]
    day = local.store.get_run(RunKey("spark", result.run_id)).logical_date[:10]
    assert started["jobDriver"]["sparkSubmit"]["entryPointArguments"] == [day]  # rendered, in the API's names
    assert started["configurationOverrides"]["applicationConfiguration"][0]["properties"] == {
        "spark.executor.memory": "2g"  # Spark's own keys as written
    }
    assert ti["nowhere"].error.startswith("EmrServerless.ResourceNotFoundException")


def _emr_backend() -> Any:
    from moto.emr import emr_backends

    return emr_backends["123456789012"]["us-east-1"]


def test_an_emr_cluster_is_created_and_waited_for_its_step_added_and_watched_and_the_cluster_removed(local):
    """examples/dags/emr_spark_pi.py: the cluster's id, the step ids (and job_flow_id) are the XComs
    the provider gives; the sensor reads the step id its template pulls; the cluster ends terminated."""
    model, source = load_model(EXAMPLES / "emr_spark_pi.py")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: i.state.value for t, i in ti.items()} == dict.fromkeys(
        ["create_job_flow", "add_steps", "watch_step", "remove_cluster"], "success"
    ), [(t, i.error) for t, i in ti.items()]
    key = RunKey("emr_spark_pi", result.run_id)
    xcoms = local.store.get_xcoms(key, ["create_job_flow", "add_steps"])
    (cluster,) = _emr_backend().clusters.values()
    assert xcoms["create_job_flow"] == cluster.id
    assert xcoms["add_steps"] == [step.id for step in cluster.steps]
    assert local.store.get_xcoms(key, ["add_steps"], key="job_flow_id") == {"add_steps": cluster.id}
    assert cluster.state == "TERMINATED" and cluster.name == "PiCalc"
    assert cluster.tags == [{"Key": "team", "Value": "emr_spark_pi"}]  # rendered before the call
    assert [s.args for s in cluster.steps] == [["/usr/lib/spark/bin/run-example", "SparkPi", "10"]]


EMR_ENDS = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator, EmrCreateJobFlowOperator, EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor

with DAG("emr_ends", schedule=None, start_date=datetime(2026, 1, 1), default_args={"retries": 0}):
    users = [EmrStepSensor(task_id="failed", job_flow_id=CLUSTER, step_id=FAILED, poke_interval=1, timeout=10)]
    users.append(EmrStepSensor(task_id="skipped", job_flow_id=CLUSTER, step_id=FAILED, poke_interval=1, timeout=10,
                  soft_fail=True, failed_states=["CANCELLED"]))
    users.append(EmrStepSensor(task_id="running", job_flow_id=CLUSTER, step_id=RUNNING, poke_interval=1, timeout=2))
    users.append(EmrStepSensor(task_id="started", job_flow_id=CLUSTER, step_id=RUNNING, poke_interval=1,
                               target_states=["RUNNING"]))
    EmrCreateJobFlowOperator(task_id="broken", job_flow_overrides={"Name": "broken", "Instances": {}},
                             wait_for_completion=True, waiter_delay=1, waiter_max_attempts=3)
    EmrCreateJobFlowOperator(task_id="dying", job_flow_overrides={"Name": "dying", "Instances": {}},
                             wait_for_completion=True, waiter_delay=1, waiter_max_attempts=2)
    ended = EmrTerminateJobFlowOperator(task_id="ended", job_flow_id=CLUSTER, deferrable=True, waiter_delay=1,
                                trigger_rule="all_done")
    EmrTerminateJobFlowOperator(task_id="ended_badly", job_flow_id="{{ params.shaky }}", params={"shaky": SHAKY},
                                deferrable=True, waiter_delay=1, waiter_max_attempts=2)
    step = {"ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}
    steps = [{**step, "Name": name} for name in ("one", "two", "three")]
    users.append(EmrAddStepsOperator(task_id="all_done", job_flow_id=CLUSTER, wait_for_completion=True,
                                     waiter_delay=1, steps=steps))
    steps = [{**step, "Name": name} for name in ("one", "breaks", "three")]
    users.append(EmrAddStepsOperator(task_id="second_breaks", job_flow_id=CLUSTER, wait_for_completion=True,
                                     waiter_delay=1, steps=steps))
    users >> ended  # moto's add_steps sets a terminated cluster RUNNING again
"""


def test_an_emr_step_or_cluster_that_ends_badly_fails_the_try_as_the_provider_does(local, tmp_path, monkeypatch):
    emr = boto3.client("emr", region_name="us-east-1")
    cluster = emr.run_job_flow(
        Name="c",
        ReleaseLabel="emr-7.0.0",
        Instances={"KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="r",
        ServiceRole="s",
    )["JobFlowId"]
    step = {"ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}
    failed, running = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[{**step, "Name": "f"}, {**step, "Name": "r"}])[
        "StepIds"
    ]
    states = dict(zip((failed, running), ("FAILED", "RUNNING"), strict=True))
    for each in _emr_backend().clusters[cluster].steps:
        each.state = states[each.id]
    from moto.emr import models

    made = models.Cluster.__init__

    def broken(self, *args, **kwargs):  # a cluster EMR could not start
        made(self, *args, **kwargs)
        self.state = {"broken": "TERMINATED_WITH_ERRORS", "dying": "TERMINATING"}.get(self.name, self.state)

    monkeypatch.setattr(models.Cluster, "__init__", broken)
    made_step = models.Step.__init__

    def breaks(self, *args, **kwargs):  # a step whose job fails
        made_step(self, *args, **kwargs)
        if self.name == "breaks":
            self.state = "FAILED"

    monkeypatch.setattr(models.Step, "__init__", breaks)
    path = tmp_path / "ends.py"
    shaky = emr.run_job_flow(Name="shaky", Instances={}, JobFlowRole="r", ServiceRole="s")["JobFlowId"]
    terminate = models.ElasticMapReduceBackend.terminate_job_flows

    def with_errors(self, job_ids):  # a cluster that ends with errors
        ended = terminate(self, job_ids)
        for each in ended:
            each.state = "TERMINATED_WITH_ERRORS" if each.name == "shaky" else each.state
        return ended

    monkeypatch.setattr(models.ElasticMapReduceBackend, "terminate_job_flows", with_errors)
    constants = f"CLUSTER = {cluster!r}\nFAILED = {failed!r}\nRUNNING = {running!r}\nSHAKY = {shaky!r}\n"
    path.write_text(constants + EMR_ENDS)
    model, source = load_model(path, "emr_ends")
    result = local.run(model, source, RunRequest())
    ti = instances(local, result)
    assert {t: i.state.value for t, i in ti.items()} == {
        "failed": "failed",  # a failed state: AirflowException, as the provider's poke raises
        "skipped": "skipped",  # FAILED not among its failed_states: poked until its timeout, soft_fail skips
        "running": "failed",  # AirflowSensorTimeout
        "started": "success",  # its target state
        "broken": "failed",
        "dying": "failed",  # TERMINATING is no cluster ready: waited on, as the provider's waiter does
        "all_done": "success",  # each step waited for in turn
        "second_breaks": "failed",
        "ended": "success",  # deferred: waited for until TERMINATED
        "ended_badly": "failed",
    }
    assert ti["ended_badly"].error.startswith("AirflowException: Cluster TERMINATED_WITH_ERRORS")
    assert ti["failed"].error == "AirflowException: Step FAILED"
    assert ti["running"].error.startswith("AirflowSensorTimeout")
    assert ti["broken"].error.startswith("WaiterError: Cluster TERMINATED_WITH_ERRORS")
    assert ti["dying"].error.startswith("WaiterError: still TERMINATING after the waiter's 2 checks")
    assert ti["second_breaks"].error == "AirflowException: Step FAILED"
    steps = {s.id: s.name for s in _emr_backend().clusters[cluster].steps}
    added = local.store.get_xcoms(RunKey("emr_ends", result.run_id), ["all_done"])
    assert [steps[i] for i in added["all_done"]] == ["one", "two", "three"]  # the ids, in order, as the provider's


def test_emr_arguments_airstep_does_not_translate_are_refused_at_their_line(tmp_path):
    from airstep.loader import load_dag_file

    refused = {
        "EmrAddStepsOperator(task_id='a', job_flow_name='etl', steps=[])": "job_flow_name is not translated",
        "EmrAddStepsOperator(task_id='a', job_flow_id='j-1', steps='s.json', wait_for_completion=True)": "the list",
        "EmrCreateJobFlowOperator(task_id='a', emr_conn_id='emr_prod')": "emr_conn_id is not translated",
        "EmrStepSensor(task_id='a', job_flow_id='j-1', step_id='s', target_states=['DONE'])": "target_states",
    }
    for line, says in refused.items():
        path = tmp_path / "emr.py"
        path.write_text(
            "from datetime import datetime\nfrom airflow.sdk import DAG\n"
            "from airflow.providers.amazon.aws.operators.emr import *\n"
            "from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor\n"
            f"with DAG('d', schedule=None, start_date=datetime(2026, 1, 1)):\n    {line}\n"
        )
        (error,) = load_dag_file(str(path)).errors
        assert error.line == 6 and says in error.message, (line, error)


def test_a_bucket_name_s3_refuses_fails_the_task_with_s3s_error(local, tmp_path):
    # Locally the buckets a DAG names are made for it; one S3 would refuse stays for the call to fail on.
    path = tmp_path / "bad_bucket.py"
    path.write_text(
        "from airflow.sdk import DAG\n"
        "from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor\n"
        "with DAG('bad_bucket', schedule=None):\n"
        "    S3KeySensor(task_id='wait', bucket_name='sb', bucket_key='k', timeout=3, poke_interval=1)\n"
    )
    model, source = load_model(path, "bad_bucket")
    result = local.run(model, source, RunRequest(fast_retries=True))
    (ti,) = instances(local, result).values()
    assert (ti.state.value, ti.error.split(":")[0]) == ("failed", "S3.NoSuchBucketException")


KEYED = """
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.s3 import S3CopyObjectOperator, S3CreateObjectOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

with DAG("keyed", schedule=None):
    @task
    def key():
        return "in/2026.csv"

    named = key()
    S3CreateObjectOperator(task_id="put", s3_bucket="keyed-lake", s3_key=named, data="a,b") >> S3KeySensor(
        task_id="landed", bucket_name="keyed-lake", bucket_key=named, poke_interval=1, timeout=10
    ) >> S3CopyObjectOperator(
        task_id="copy", source_bucket_key=named, source_bucket_name="keyed-lake", dest_bucket_key="out/copy.csv",
        dest_bucket_name="keyed-lake",
    )
"""


def test_an_s3_key_from_an_upstream_task_is_the_key_called_with(local, tmp_path):
    path = tmp_path / "keyed.py"
    path.write_text(KEYED)
    model, source = load_model(path, "keyed")
    assert set(model.task_map["put"].upstream) == {"key"}
    result = local.run(model, source, RunRequest())
    assert {t: i.state.value for t, i in instances(local, result).items()} == dict.fromkeys(
        ("key", "put", "landed", "copy"), "success"
    )
    for key in ("in/2026.csv", "out/copy.csv"):
        assert boto3.client("s3").get_object(Bucket="keyed-lake", Key=key)["Body"].read() == b"a,b"
