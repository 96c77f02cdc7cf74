"""The amazon provider's operators as the compiler sees them: each one's Step Functions resource and
Parameters (written into the definition, or rendered at run time), what its XCom is selected from,
and the arguments airstep refuses rather than ignore."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta

import pytest

from airstep.compat.imports import airflow_imports
from airstep.errors import AirflowException, DagDefinitionError
from airstep.integration import Grant, Integration
from airstep.model import DagModel
from airstep.runtime.service_calls import ended_call
from airstep.sdk.dag import DAG
from airstep.states import TaskState
from airstep_compiler import CompileError, CompileOptions, DagSource, compile_dag


def _operators():
    with airflow_imports():
        from airflow.providers.amazon.aws.operators.athena import AthenaOperator
        from airflow.providers.amazon.aws.operators.batch import BatchOperator
        from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
        from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator
        from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
        from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator, GlueCrawlerRunOperator
        from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
        from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator
        from airflow.providers.amazon.aws.operators.s3 import (
            S3CopyObjectOperator,
            S3CreateObjectOperator,
            S3DeleteObjectsOperator,
        )
        from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
        from airflow.providers.amazon.aws.operators.sqs import SqsPublishOperator
        from airflow.providers.amazon.aws.operators.step_function import StepFunctionStartExecutionOperator
        from airflow.providers.amazon.aws.sensors.athena import AthenaSensor
        from airflow.providers.amazon.aws.sensors.batch import BatchSensor
        from airflow.providers.amazon.aws.sensors.glue import GlueJobSensor
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
    return (
        LambdaInvokeFunctionOperator,
        SnsPublishOperator,
        SqsPublishOperator,
        StepFunctionStartExecutionOperator,
        GlueJobOperator,
        GlueCrawlerRunOperator,
        GlueCrawlerOperator,
        S3CreateObjectOperator,
        S3CopyObjectOperator,
        S3DeleteObjectsOperator,
        AthenaOperator,
        S3KeySensor,
        GlueJobSensor,
        RedshiftDataOperator,
        AthenaSensor,
        EcsRunTaskOperator,
        BatchOperator,
        BatchSensor,
        EmrServerlessStartJobOperator,
    )


(
    LambdaInvoke,
    SnsPublish,
    SqsPublish,
    StartExecution,
    GlueJob,
    CrawlerRun,
    Crawler,
    S3Create,
    S3Copy,
    S3Delete,
    Athena,
    S3Key,
    GlueJobSensor,
    RedshiftData,
    AthenaQuerySensor,
    EcsRunTask,
    Batch,
    BatchJobSensor,
    EmrServerlessStartJob,
) = _operators()
TOPIC = "arn:aws:sns:us-east-1:123456789012:t"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"


def integration_of(build, **dag_args) -> Integration:
    with DAG("d", start_date=datetime(2026, 1, 1), **dag_args) as dag:
        build()
    (task,) = DagModel.from_dag(dag).tasks
    assert task.integration is not None
    return task.integration


def test_arguments_known_at_compile_time_are_the_calls_parameters():
    sns = integration_of(
        lambda: SnsPublish(task_id="t", target_arn=TOPIC, message="hi", subject="s", message_attributes={"n": 2})
    )
    assert sns == Integration(
        "SnsPublishOperator",
        "arn:aws:states:::sns:publish",
        {
            "Message": json.dumps({"default": "hi"}),  # as the provider sends it
            "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "2"}},
            "MessageStructure": "json",
            "Subject": "s",
            "TargetArn": TOPIC,
        },
        returns=("MessageId", "SequenceNumber"),
        grants=(Grant(("sns:Publish",), (TOPIC,)),),  # what the DAG's role must allow: the topic, no other
    )
    sqs = integration_of(lambda: SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", delay_seconds="5"))
    assert sqs.parameters == {"DelaySeconds": 5, "MessageBody": "m", "QueueUrl": QUEUE}
    invoke = integration_of(
        lambda: LambdaInvoke(task_id="t", function_name="f", payload=b'{"a": [1]}', qualifier="live")
    )
    assert invoke.parameters == {"FunctionName": "f", "Payload": {"a": [1]}, "Qualifier": "live"}
    assert (invoke.returns, invoke.as_text, invoke.prepare) == ((), True, False)


def test_templated_arguments_are_rendered_by_the_try_and_read_from_its_state_data():
    def build():
        SnsPublish(task_id="t", target_arn=TOPIC, message="on {{ ds }}", subject="plain")

    integration = integration_of(build)
    assert integration.rendered == ("Message",) and integration.prepare
    assert "Message" not in integration.parameters
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        build()
    compiled = compile_dag(DagModel.from_dag(dag), DagSource("d.py", "v1"), CompileOptions())
    call = compiled.definition["States"]["t"]["Branches"][0]["States"]["t@call"]
    assert call["Parameters"]["Message.$"] == "$.begun.outcome.call.Message"
    assert call["Parameters"]["Subject"] == "plain"
    # with native rendering every string may change type: all are rendered
    native = integration_of(build, render_template_as_native_obj=True)
    assert native.rendered == ("Message", "Subject", "TargetArn")


def test_an_on_execute_callback_or_no_xcom_push_shape_the_try():
    integration = integration_of(
        lambda: SqsPublish(
            task_id="t", sqs_queue=QUEUE, message_content="m", on_execute_callback=print, do_xcom_push=False
        )
    )
    assert integration.prepare and not integration.rendered and not integration.push


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", aws_conn_id="prod"), "aws_conn_id"),
        (lambda: SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", region_name=7), "region_name"),
        (lambda: SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", verify=False), "verify"),
        (lambda: LambdaInvoke(task_id="t", function_name="f", log_type="Tail"), "log_type"),
        (lambda: GlueJob(task_id="t", job_name="j", update_config=True), "update_config.*never changes it"),
        (lambda: GlueJob(task_id="t", job_name="j", replace_script_file=True), "replace_script_file"),
        (lambda: GlueJob(task_id="t", job_name="j", script_args={"--n": 3}), "script_args.*strings"),
        (
            lambda: GlueJob(task_id="t", job_name="j", run_job_kwargs={"Workers": 2}),
            "run_job_kwargs .*Workers: not a parameter",
        ),
        (lambda: GlueJob(task_id="t", job_name="j", openlineage_inject_parent_job_info=True), "OpenLineage"),
        (lambda: CrawlerRun(task_id="t", crawler_name="c", poll_interval=0), "poll_interval"),
        (lambda: S3Create(task_id="t", s3_key="k", data="d"), "not an s3:// URL and no s3_bucket"),
        (lambda: S3Create(task_id="t", s3_bucket="b", s3_key="s3://b/k", data="d"), "s3_bucket must be left out"),
        (lambda: S3Create(task_id="t", s3_key="s3://b/k", data=b"\xff"), "binary data"),
        (lambda: S3Create(task_id="t", s3_key="s3://b/k", data="d", compression="gzip"), "compression"),
        (lambda: S3Create(task_id="t", s3_key="s3://b/k", data="d", acl_policy="private"), "acl_policy"),
        (lambda: S3Delete(task_id="t", bucket="b"), "either keys or"),
        (lambda: S3Delete(task_id="t", bucket="b", prefix="raw/"), "prefix .*give the keys"),
        (lambda: S3Delete(task_id="t", bucket="b", keys=[f"k{i}" for i in range(1001)]), "at most 1,000"),
        (lambda: Crawler(task_id="t", config={"Role": "r"}), "config .*Name"),
        (lambda: LambdaInvoke(task_id="t", function_name="f", payload="{not json"), "payload .*not JSON"),
        (lambda: LambdaInvoke(task_id="t", function_name="f", invocation_type="Later"), "invocation_type"),
        (lambda: SnsPublish(task_id="t", target_arn=TOPIC, message="m", message_attributes={"b": b"x"}), "binary"),
        (lambda: SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", delay_seconds="soon"), "delay_seconds"),
        (
            lambda: SqsPublish(
                task_id="t",
                sqs_queue=QUEUE,
                message_content="m",
                message_attributes={"b": {"DataType": "Binary", "BinaryValue": b"x"}},
            ),
            "binary",
        ),
    ],
)
def test_what_airstep_does_not_translate_is_refused_at_its_line(build, message):
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match=message) as raised:
        build()
    assert raised.value.location is not None and raised.value.location.line > 0


def test_the_default_connection_is_the_dags_own_role():
    for conn_id in ("aws_default", None, ""):
        integration_of(
            lambda conn_id=conn_id: SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", aws_conn_id=conn_id)
        )


def test_region_name_must_be_the_environments_at_compile():
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", region_name="eu-west-1")
    model = DagModel.from_dag(dag)
    compile_dag(model, DagSource("d.py", "v1"), CompileOptions(region="eu-west-1"))
    compile_dag(model, DagSource("d.py", "v1"), CompileOptions())  # (the region not known: airstep compile)
    with pytest.raises(CompileError, match="region_name='eu-west-1' is not the environment's region") as raised:
        compile_dag(model, DagSource("d.py", "v1"), CompileOptions(region="us-east-1"))
    assert raised.value.limit == "integration-region"


def test_a_static_key_that_step_functions_would_read_as_a_path_goes_through_the_run_step():
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        LambdaInvoke(task_id="t", function_name="f", payload='{"file.$": "$.run", "n": 1}')
    integration = DagModel.from_dag(dag).tasks[0].integration
    assert integration.rendered == ("Payload",) and "Payload" not in integration.parameters and integration.prepare
    compiled = compile_dag(DagModel.from_dag(dag), DagSource("d.py", "v1"), CompileOptions())
    assert '"file.$"' not in compiled.definition_json


def test_a_secret_is_refused_as_a_native_number_or_once_its_json_is_decoded():
    from airstep.secrets_masker import mask_secret

    mask_secret("98765432")
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:c"
    with DAG("d", start_date=datetime(2026, 1, 1)):
        start = StartExecution(task_id="t", state_machine_arn=machine, state_machine_input="{{ x }}")
    for rendered in ({"pin": 98765432}, '{"pw": "9876\\u0035432"}'):
        start.state_machine_input = rendered
        with pytest.raises(AirflowException, match="rendered to a secret"):
            start.rendered_parameters(["state_machine_input"])
    start.state_machine_input = '"plain"'  # a JSON string stays the text it was (Step Functions wants JSON)
    assert start.rendered_parameters(["state_machine_input"]) == {"Input": '"plain"'}


def test_a_templated_region_name_is_refused():
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match="region_name"):
        SqsPublish(task_id="t", sqs_queue=QUEUE, message_content="m", region_name="{{ var.value.region }}")


def test_a_rendered_value_holding_a_secret_is_refused_before_it_is_encoded():
    from airstep.secrets_masker import mask_secret

    secret = 'p"a\\ss-ü'
    mask_secret(secret)
    with DAG("d", start_date=datetime(2026, 1, 1)):
        sns = SnsPublish(task_id="t", target_arn=TOPIC, message="{{ x }}")
    sns.message = f"the password is {secret}"  # as rendering leaves it
    with pytest.raises(AirflowException, match="message of 't' rendered to a secret"):
        sns.rendered_parameters(["message"])


def test_a_deferrable_start_waits_for_the_execution_within_the_providers_waiter():
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:child"
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        StartExecution(task_id="fire", state_machine_arn=machine, state_machine_input='{"n": 1}')
        StartExecution(
            task_id="wait", state_machine_arn=machine, deferrable=True, waiter_delay=10, waiter_max_attempts=6
        )
        StartExecution(task_id="capped", state_machine_arn=machine, deferrable=True, execution_timeout=30)
    tasks = {t.task_id: t for t in DagModel.from_dag(dag).tasks}
    assert tasks["fire"].integration.resource == "arn:aws:states:::states:startExecution"
    assert tasks["fire"].integration.parameters == {"Input": {"n": 1}, "StateMachineArn": machine}
    assert tasks["wait"].integration.resource == "arn:aws:states:::states:startExecution.sync:2"
    compiled = compile_dag(DagModel.from_dag(dag), DagSource("d.py", "v1"), CompileOptions()).definition_json
    calls: dict[str, dict] = {}

    def collect(states: dict) -> None:
        for name, state in states.items():
            if name.endswith("@call"):
                calls[name] = state
            for branch in state.get("Branches", []):
                collect(branch["States"])

    collect(json.loads(compiled)["States"])
    assert "TimeoutSeconds" not in calls["fire@call"]  # it returns at once, as the provider does
    assert (calls["wait@call"]["TimeoutSeconds"], calls["capped@call"]["TimeoutSeconds"]) == (60, 30)
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match="is_redrive_execution"):
        StartExecution(task_id="again", state_machine_arn=machine, is_redrive_execution=True)


def test_a_mapped_operator_is_refused_where_it_is_mapped_and_one_in_a_mapped_group_at_compile():
    # (before its arguments' own checks, which the placeholders of mapped arguments would fail)
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError) as refused:
        SqsPublish.partial(task_id="t", sqs_queue=QUEUE).expand(message_content=["a", "b"])
    assert "task 't': a mapped SqsPublishOperator is not supported by airstep yet" in str(refused.value)
    assert refused.value.location.line > 0
    with airflow_imports():
        from airflow.sdk import task_group

        with DAG("d", start_date=datetime(2026, 1, 1)) as dag:

            @task_group
            def each(message):
                SqsPublish(task_id="t", sqs_queue=QUEUE, message_content=message)

            each.expand(message=["a", "b"])
    with pytest.raises(CompileError, match="mapped SqsPublishOperator") as raised:
        compile_dag(DagModel.from_dag(dag), DagSource("d.py", "v1"), CompileOptions())
    assert raised.value.limit == "mapped-integration" and raised.value.line > 0


def test_an_integration_round_trips_in_the_graph_model():
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        LambdaInvoke(task_id="t", function_name="{{ params.f }}", payload='{"a": 1}')
    model = DagModel.from_dag(dag)
    assert DagModel.from_json(model.to_json()) == model
    assert "integration" in json.loads(model.to_json())["tasks"][0]


LAMBDA = Integration("LambdaInvokeFunctionOperator", "arn:aws:states:::lambda:invoke", {}, as_text=True)
SQS = Integration("SqsPublishOperator", "arn:aws:states:::sqs:sendMessage", {}, returns=("MessageId", "SequenceNumber"))


@pytest.mark.parametrize(
    ("payload", "pushed"),
    [({"Payload": {"b": 1, "a": [2]}}, '{"b": 1, "a": [2]}'), ({"Payload": None}, "null"), ({"Payload": ""}, "")],
)
def test_a_lambda_payload_is_pushed_as_the_json_text_airflow_returns(payload, pushed):
    result = ended_call(LAMBDA, payload, None, None)
    assert (result.state, json.loads(result.xcoms)) == (TaskState.SUCCESS, {"return_value": pushed})


def test_the_xcom_keeps_the_keys_the_provider_returns_that_the_response_has():
    response = {"MessageId": "m", "MD5OfMessageBody": "x", "SdkHttpMetadata": {"HttpStatusCode": 200}}
    assert json.loads(ended_call(SQS, response, None, None).xcoms) == {"return_value": {"MessageId": "m"}}


def test_a_calls_error_is_the_tries_error_as_step_functions_names_it():
    cause = json.dumps({"errorMessage": "bad input", "errorType": "ValueError", "stackTrace": []})
    failed = ended_call(LAMBDA, None, {"Error": "ValueError", "Cause": cause}, None)
    assert (failed.state, failed.error, failed.error_type) == (TaskState.FAILED, "ValueError: bad input", "ValueError")
    late = ended_call(LAMBDA, None, {"Error": "States.Timeout", "Cause": ""}, 30.0)
    assert late.error == "AirflowTaskTimeout: the call ran past execution_timeout (30 s)"
    sns = ended_call(LAMBDA, None, {"Error": "SNS.NotFoundException", "Cause": "Topic does not exist"}, None)
    assert sns.error == "SNS.NotFoundException: Topic does not exist"


def test_a_result_too_large_for_the_record_fails_the_try_naming_its_size():
    big = ended_call(LAMBDA, {"Payload": "x" * 40_000}, None, None)
    assert big.state is TaskState.FAILED and "40,0" in big.error and "32,768 bytes" in big.error
    assert big.final  # another try would get as much
    quiet = ended_call(dataclasses.replace(LAMBDA, push=False), {"Payload": "x" * 40_000}, None, None)
    assert (quiet.state, quiet.xcoms) == (TaskState.SUCCESS, None)


def test_a_glue_job_run_is_waited_for_unless_asked_not_to_and_its_run_id_is_the_xcom():
    waited = integration_of(
        lambda: GlueJob(
            task_id="t",
            job_name="nightly",
            script_args={"--day": "{{ ds }}", "--mode": "full"},
            run_job_kwargs={"NumberOfWorkers": 2, "WorkerType": "G.1X"},
            script_location="s3://scripts/nightly.py",  # used by Airflow only to create a missing job
            iam_role_name="glue",
        )
    )
    assert waited == Integration(
        "GlueJobOperator",
        "arn:aws:states:::glue:startJobRun.sync",
        {"JobName": "nightly", "NumberOfWorkers": 2, "WorkerType": "G.1X"},  # run_job_kwargs: each its own
        rendered=("Arguments",),
        returns=("Id",),  # the job run, once it ended
        prepare=True,
        returns_value=True,
        ended="JobRunState",  # a run that ends STOPPED (or anything but SUCCEEDED) fails, as in Airflow
        succeeded=("SUCCEEDED",),
        also_push=(("glue_job_run_id", "Id"),),  # the provider's xcom_push of the run id
        grants=(
            Grant(
                ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"),
                ("arn:${Partition}:glue:${Region}:${Account}:job/nightly",),
            ),
        ),
    )
    started = integration_of(lambda: GlueJob(task_id="t", job_name="nightly", wait_for_completion=False))
    assert (started.resource, started.returns, started.parameters) == (
        "arn:aws:states:::glue:startJobRun",
        ("JobRunId",),
        {"JobName": "nightly"},
    )
    deferred = integration_of(
        lambda: GlueJob(
            task_id="t",
            job_name="j",
            wait_for_completion=False,
            deferrable=True,
            waiter_delay=10,
            waiter_max_attempts=6,
        )
    )
    assert (deferred.resource, deferred.wait_seconds) == ("arn:aws:states:::glue:startJobRun.sync", 60.0)


def test_templated_run_job_kwargs_fill_the_parameters_named_by_their_keys():
    def build():
        GlueJob(task_id="t", job_name="j", run_job_kwargs={"NumberOfWorkers": "{{ params.workers }}", "Timeout": 60})

    assert integration_of(build).rendered == ("NumberOfWorkers", "Timeout")
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        build()
    compiled = compile_dag(DagModel.from_dag(dag), DagSource("d.py", "v1"), CompileOptions())
    call = compiled.definition["States"]["t"]["Branches"][0]["States"]["t@call"]["Parameters"]
    assert call == {
        "JobName": "j",
        "NumberOfWorkers.$": "$.begun.outcome.call.NumberOfWorkers",
        "Timeout.$": "$.begun.outcome.call.Timeout",
    }
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match="keys are Parameters"):
        GlueJob(task_id="t", job_name="j", run_job_kwargs="{{ params.kwargs }}")
    native = integration_of(
        lambda: GlueJob(task_id="t", job_name="j", run_job_kwargs={"WorkerType": "G.1X"}),
        render_template_as_native_obj=True,
    )
    assert "WorkerType" in native.rendered  # Airflow renders a dict's values, never its keys


def test_a_failed_glue_job_run_fails_the_try_with_its_state_and_message():
    glue = Integration(
        "GlueJobOperator", "arn:aws:states:::glue:startJobRun.sync", {}, returns=("Id",), returns_value=True
    )
    run = {"Id": "jr_1", "JobName": "nightly", "JobRunState": "FAILED", "ErrorMessage": "division by zero"}
    failed = ended_call(glue, None, {"Error": "States.TaskFailed", "Cause": json.dumps(run)}, None)
    assert failed.error == "States.TaskFailed: Glue job run jr_1 of nightly ended FAILED: division by zero"
    assert ended_call(glue, {"Id": "jr_1", "JobRunState": "SUCCEEDED"}, None, None).xcoms == '{"return_value":"jr_1"}'
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        GlueJob(task_id="t", job_name="nightly")
    waited = DagModel.from_dag(dag).tasks[0].integration
    assert waited is not None
    stopped = ended_call(waited, {"Id": "jr_2", "JobRunState": "STOPPED"}, None, None)
    assert (stopped.state, stopped.error) == (
        TaskState.FAILED,
        "AirflowException: GlueJobOperator's work ended STOPPED",
    )
    ran = ended_call(waited, {"Id": "jr_2", "JobRunState": "SUCCEEDED"}, None, None)
    assert json.loads(ran.xcoms) == {"glue_job_run_id": "jr_2", "return_value": "jr_2"}
    compiled = compile_dag(DagModel.from_dag(dag), DagSource("d.py", "v1"), CompileOptions())
    call = compiled.definition["States"]["t"]["Branches"][0]["States"]["t@call"]
    assert call["ResultSelector"] == {"result": {"Id.$": "$.Id", "JobRunState.$": "$.JobRunState"}}


def _branch(build, **dag_args) -> dict:
    with DAG("d", start_date=datetime(2026, 1, 1), **dag_args) as dag:
        build()
    compiled = compile_dag(DagModel.from_dag(dag), DagSource("d.py", "v1"), CompileOptions())
    return compiled.definition["States"]["t"]["Branches"][0]["States"]


def test_a_crawler_is_started_then_described_until_ready_with_no_compute_while_it_runs():
    states = _branch(lambda: CrawlerRun(task_id="t", crawler_name="{{ params.crawler }}", poll_interval=20))
    call, describe = states["t@call"], states["t@describe"]
    assert (call["Resource"], call["Parameters"]) == (
        "arn:aws:states:::aws-sdk:glue:startCrawler",
        {"Name.$": "$.begun.outcome.call.Name"},  # rendered when the try began
    )
    assert call["ResultPath"] == "$.begun.result" and call["Next"] == "t@polls"  # the outcome stays for the describe
    assert (describe["Resource"], describe["Parameters"]) == (
        "arn:aws:states:::aws-sdk:glue:getCrawler",
        {"Name.$": "$.begun.outcome.call.Name"},
    )
    assert [states[n]["Next"] for n in ("t@polls", "t@describe", "t@count", "t@pause")] == [
        "t@describe",
        "t@count",
        "t@described",
        "t@describe",
    ]
    still, later = states["t@described"]["Choices"]
    assert still["Next"] == "t@pause" and states["t@described"]["Default"] == "t@record"
    assert later["Next"] == "t@pause_longer" and states["t@pause_longer"]["Next"] == "t@describe"
    tests = still["And"]
    assert tests[1] == {
        "Or": [
            {"Variable": "$.begun.result.Crawler.State", "StringEquals": "RUNNING"},
            {"Variable": "$.begun.result.Crawler.State", "StringEquals": "STOPPING"},
        ]
    }
    # the waiter's 1,000 checks do not fit a quarter of the run's history: half of those that fit come at
    # its interval (a short crawl is seen as soon), the rest further apart, for the same total wait
    fast, total = tests[2]["NumericLessThan"], later["And"][2]["NumericLessThan"]
    assert fast == total // 2 and total < 1000 and states["t@pause"]["Seconds"] == 20
    assert fast * 20 + (total - fast) * states["t@pause_longer"]["Seconds"] >= 1000 * 20
    assert states["t@count"]["Parameters"] == {"n.$": "States.MathAdd($.begun.polls.n, 1)"}
    assert describe["Retry"] == [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2.0}
    ]
    assert "Retry" not in call  # a start is not made twice: the task's retries decide
    deferred = integration_of(lambda: CrawlerRun(task_id="t", crawler_name="c", deferrable=True))
    assert deferred.poll is not None and (deferred.poll.max_polls, deferred.poll.failed_as) == (
        1500,
        "AirflowException",
    )


def test_an_execution_timeout_bounds_the_checks_and_not_waiting_describes_once():
    states = _branch(
        lambda: CrawlerRun(
            task_id="t", crawler_name="c", poll_interval=5, execution_timeout=timedelta(minutes=1), retries=2
        )
    )
    assert (states["t@described"]["Choices"][0]["And"][2]["NumericLessThan"], states["t@pause"]["Seconds"]) == (12, 5)
    once = _branch(lambda: CrawlerRun(task_id="t", crawler_name="c", wait_for_completion=False))
    assert once["t@call"]["Next"] == "t@describe" and once["t@describe"]["Next"] == "t@record"
    assert not {"t@polls", "t@count", "t@described", "t@pause"} & set(once)
    resumed = _branch(lambda: CrawlerRun(task_id="t", crawler_name="c", fail_on_already_running=False))
    assert resumed["t@call"]["Catch"][0] == {
        "ErrorEquals": ["Glue.CrawlerRunningException"],  # already running: wait for that crawl instead
        "ResultPath": "$.begun.result",
        "Next": "t@polls",
    }


def test_a_crawl_that_failed_or_is_still_running_fails_the_try():
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        CrawlerRun(task_id="t", crawler_name="c")
    (task,) = DagModel.from_dag(dag).tasks
    crawler = task.integration
    assert crawler is not None and crawler.returns == ("Crawler.Name",)
    ended = {"Crawler": {"Name": "c", "State": "READY", "LastCrawl": {"Status": "SUCCEEDED"}}}
    assert ended_call(crawler, ended, None, 5000).xcoms == '{"return_value":"c"}'
    failed = {
        "Crawler": {"Name": "c", "State": "READY", "LastCrawl": {"Status": "FAILED", "ErrorMessage": "no access"}}
    }
    assert ended_call(crawler, failed, None, 5000).error == "WaiterError: Crawler FAILED: no access"  # the waiter's
    running = {"Crawler": {"Name": "c", "State": "RUNNING"}}
    assert ended_call(crawler, running, None, 5000).error.startswith("WaiterError: still RUNNING after the waiter's")
    assert (
        ended_call(crawler, running, None, 60).error == "AirflowTaskTimeout: still RUNNING at execution_timeout (60 s)"
    )
    assert DagModel.from_json(DagModel.from_dag(dag).to_json()).tasks[0].integration == crawler


def test_s3_objects_are_written_copied_and_deleted_by_aws_sdk_calls_that_push_nothing():
    create = integration_of(
        lambda: S3Create(task_id="t", s3_key="s3://lake/raw/{{ ds }}.csv", data=b"a,b", encrypt=True)
    )
    assert (create.resource, create.parameters, create.rendered, create.push) == (
        "arn:aws:states:::aws-sdk:s3:putObject",
        {"Body": "a,b", "Bucket": "lake", "IfNoneMatch": "*", "ServerSideEncryption": "AES256"},  # replace=False
        ("Key",),
        False,  # the provider's execute returns None
    )
    replace = integration_of(lambda: S3Create(task_id="t", s3_bucket="lake", s3_key="k", data="d", replace=True))
    assert replace.parameters == {"Body": "d", "Bucket": "lake", "Key": "k"}
    copy = integration_of(
        lambda: S3Copy(
            task_id="t",
            source_bucket_key="s3://lake/raw/{{ ds }}.csv",
            dest_bucket_key="clean/x.csv",
            dest_bucket_name="archive",
            source_version_id="v1",
            meta_data_directive="COPY",
        )
    )
    assert (copy.resource, copy.parameters, copy.rendered) == (
        "arn:aws:states:::aws-sdk:s3:copyObject",
        {"Bucket": "archive", "Key": "clean/x.csv", "MetadataDirective": "COPY"},
        ("CopySource",),  # lake/raw/<ds>.csv?versionId=v1, rendered when the try begins
    )
    delete = integration_of(lambda: S3Delete(task_id="t", bucket="lake", keys="raw/a.csv"))
    assert delete.parameters == {"Bucket": "lake", "Delete": {"Objects": [{"Key": "raw/a.csv"}], "Quiet": True}}
    refused = {"Errors": [{"Key": "raw/a.csv", "Code": "AccessDenied"}]}
    assert ended_call(delete, refused, None, None).error.startswith("AirflowException: errors in the response: ")
    assert ended_call(delete, {}, None, None).state is TaskState.SUCCESS


def test_an_athena_query_is_started_and_waited_for_and_its_execution_id_is_the_xcom():
    query = integration_of(
        lambda: Athena(
            task_id="t",
            query="SELECT 1",
            database="lake",
            output_location="s3://results/",
            query_execution_context={"Database": "ignored", "Catalog": "other"},  # the arguments win, as Airflow
            result_configuration={"EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
            workgroup="analysts",
            client_request_token="once",
        )
    )
    assert query == Integration(
        "AthenaOperator",
        "arn:aws:states:::athena:startQueryExecution.sync",
        {
            "ClientRequestToken": "once",
            "QueryExecutionContext": {"Catalog": "AwsDataCatalog", "Database": "lake"},
            "QueryString": "SELECT 1",
            "ResultConfiguration": {
                "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                "OutputLocation": "s3://results/",
            },
            "WorkGroup": "analysts",
        },
        returns=("QueryExecution.QueryExecutionId",),
        returns_value=True,
        grants=query.grants,
    )
    (workgroup, catalog, results_bucket, results, data) = query.grants
    assert workgroup.resources == ("arn:${Partition}:athena:${Region}:${Account}:workgroup/analysts",)
    assert catalog.resources == (
        "arn:${Partition}:glue:${Region}:${Account}:catalog",
        "arn:${Partition}:glue:${Region}:${Account}:database/lake",
        "arn:${Partition}:glue:${Region}:${Account}:table/lake/*",
    )
    assert (results_bucket.resources, results.resources) == (
        ("arn:${Partition}:s3:::results",),
        ("arn:${Partition}:s3:::results/*",),
    )
    assert data.resources == ("arn:${Partition}:s3:::*",)  # what the query reads: held by the boundary
    plain = integration_of(lambda: Athena(task_id="t", query="SELECT 1"))
    assert plain.parameters == {  # the provider always passes a context and a result configuration
        "QueryExecutionContext": {"Catalog": "AwsDataCatalog"},
        "QueryString": "SELECT 1",
        "ResultConfiguration": {},
        "WorkGroup": "primary",
    }
    limited = integration_of(lambda: Athena(task_id="t", query="SELECT 1", sleep_time=10, max_polling_attempts=6))
    assert limited.wait_seconds == 60.0  # the provider gives up after its checks
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match="sleep_time"):
        Athena(task_id="t", query="SELECT 1", sleep_time=0)


def test_a_templated_key_renders_its_whole_parameter_and_a_sql_file_is_a_template():
    def build():
        Athena(task_id="t", query="queries/daily.sql", database="lake_{{ params.env }}", output_location="s3://r/")

    query = integration_of(build)
    assert query.rendered == ("QueryExecutionContext", "QueryString")  # the file is read when the try begins
    assert query.parameters == {"ResultConfiguration": {"OutputLocation": "s3://r/"}, "WorkGroup": "primary"}
    states = _branch(build)
    assert states["t@call"]["Parameters"] == {
        "QueryExecutionContext.$": "$.begun.outcome.call.QueryExecutionContext",
        "QueryString.$": "$.begun.outcome.call.QueryString",
        "ResultConfiguration": {"OutputLocation": "s3://r/"},
        "WorkGroup": "primary",
    }
    assert states["t@call"]["ResultSelector"] == {  # only the id: the answer holds the query text too
        "result": {"QueryExecution": {"QueryExecutionId.$": "$.QueryExecution.QueryExecutionId"}}
    }
    with DAG("d", start_date=datetime(2026, 1, 1), params={"env": "prod"}) as dag:
        build()
    rendered = dag.task_dict["t"]
    rendered.database = "lake_prod"
    rendered.query = "SELECT 2"
    assert rendered.rendered_parameters(["query", "database"]) == {
        "QueryExecutionContext": {"Catalog": "AwsDataCatalog", "Database": "lake_prod"},
        "QueryString": "SELECT 2",
    }


def test_a_failed_query_fails_the_try_with_athenas_reason():
    athena = integration_of(lambda: Athena(task_id="t", query="SELECT 1"))
    execution = {"QueryExecutionId": "q-1", "Status": {"State": "FAILED", "StateChangeReason": "Table not found"}}
    failed = ended_call(athena, None, {"Error": "States.TaskFailed", "Cause": json.dumps(execution)}, None)
    assert failed.error == "States.TaskFailed: Athena query q-1 ended FAILED: Table not found"
    wrapped = {"Error": "States.TaskFailed", "Cause": json.dumps({"QueryExecution": execution})}
    assert ended_call(athena, None, wrapped, None).error == failed.error
    ran = ended_call(athena, {"QueryExecution": {"QueryExecutionId": "q-2"}}, None, None)
    assert ran.xcoms == '{"return_value":"q-2"}'


def test_a_key_sensor_lists_by_its_key_every_poke_interval_until_the_key_is_listed():
    states = _branch(lambda: S3Key(task_id="t", bucket_key="s3://lake/in/x.csv", poke_interval=30, timeout=600))
    assert states["t@call"]["Resource"] == "arn:aws:states:::aws-sdk:s3:listObjectsV2"  # the first poke
    assert states["t@call"]["Parameters"] == {"Bucket": "lake", "MaxKeys": 1, "Prefix": "in/x.csv"}
    assert states["t@call"]["Next"] == "t@polls" and states["t@polls"]["Next"] == "t@count"  # no second call at once
    assert states["t@describe"]["Parameters"] == states["t@call"]["Parameters"]
    assert states["t@call"]["Retry"] == states["t@describe"]["Retry"]  # the first poke, throttled, is made again
    assert states["t@pause"] == {"Type": "Wait", "Seconds": 30, "Next": "t@describe"}  # no Lambda pokes
    half = integration_of(lambda: S3Key(task_id="t", bucket_key="s3://b/k", poke_interval=0.5, timeout=10))
    assert half.poll is not None and (half.poll.interval_seconds, half.poll.max_polls) == (1, 11)  # whole seconds
    key = "$.begun.result.Contents[0].Key"
    found = {"And": [{"Variable": key, "IsPresent": True}, {"Variable": key, "StringEquals": "in/x.csv"}]}
    assert states["t@described"]["Choices"] == [
        {"And": [{"Not": found}, {"Variable": "$.begun.polls.n", "NumericLessThan": 21}], "Next": "t@pause"}
    ]  # one poke at once, then one every 30 s until the timeout
    templated = _branch(lambda: S3Key(task_id="t", bucket_key="in/{{ ds }}.csv", bucket_name="lake"))
    rule = templated["t@described"]["Choices"][0]
    assert rule["And"][0]["Not"]["And"][1] == {"Variable": key, "StringEqualsPath": "$.begun.outcome.call.Prefix"}
    prefix = _branch(lambda: S3Key(task_id="t", bucket_key="s3://lake/in/2026-*", wildcard_match=True))
    assert prefix["t@call"]["Parameters"]["Prefix"] == "in/2026-"
    rule = prefix["t@described"]["Choices"][0]
    assert rule["And"][0] == {"Not": {"Variable": key, "IsPresent": True}}  # any key listed by the prefix
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        S3Key(task_id="t", bucket_key="s3://lake/in/x.csv")
    (task,) = DagModel.from_dag(dag).tasks
    assert task.sensor is None and task.integration is not None  # no runner pokes: Step Functions' describe calls
    assert DagModel.from_json(DagModel.from_dag(dag).to_json()).tasks[0].integration == task.integration


@pytest.mark.parametrize(
    "arguments, refused",
    [
        ({"bucket_key": ["s3://b/a", "s3://b/c"]}, "bucket_key is not translated by airstep: 2 keys: give one"),
        ({"bucket_key": "s3://b/a", "check_fn": len}, "check_fn is not translated"),
        ({"bucket_key": "s3://b/a", "use_regex": True}, "use_regex is not translated"),
        (
            {"bucket_key": "s3://b/*.csv", "wildcard_match": True},
            "wildcard_match is not translated by airstep: '*.csv'",
        ),
        ({"bucket_key": "s3://b/a", "silent_fail": True}, "silent_fail is not translated"),
        ({"bucket_key": "a"}, "is not an s3:// URL and no bucket_name is given"),
    ],
)
def test_what_a_key_sensor_cannot_check_without_code_is_refused_at_its_line(arguments, refused):
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match=re.escape(refused)):
        S3Key(task_id="t", **arguments)


def test_a_sensor_that_times_out_ends_without_retry_or_is_skipped_with_soft_fail():
    sensor = integration_of(lambda: S3Key(task_id="t", bucket_key="s3://lake/a.csv", poke_interval=10, timeout=60))
    found = ended_call(sensor, {"KeyCount": 1, "Contents": [{"Key": "a.csv"}]}, None, None)
    assert (found.state, found.xcoms) == (TaskState.SUCCESS, None)  # the provider's sensor returns nothing
    other = ended_call(sensor, {"KeyCount": 1, "Contents": [{"Key": "a.csv.tmp"}]}, None, None)
    assert (other.state, other.error_type, other.final) == (TaskState.FAILED, "AirflowSensorTimeout", True)
    assert other.error == (
        "AirflowSensorTimeout: Sensor has timed out after about 70 s; "
        "the last check found Contents[0].Key = 'a.csv.tmp'"
    )
    assert ended_call(sensor, {"KeyCount": 0}, None, 30).error_type == "AirflowTaskTimeout"  # execution_timeout
    templated = integration_of(lambda: S3Key(task_id="t", bucket_key="s3://lake/{{ ds }}.csv"))
    rendered = ended_call(
        templated, {"Contents": [{"Key": "2026-01-01.csv"}]}, None, None, {"Prefix": "2026-01-01.csv"}
    )
    assert rendered.state is TaskState.SUCCESS
    soft = integration_of(lambda: S3Key(task_id="t", bucket_key="s3://lake/a.csv", soft_fail=True))
    assert ended_call(soft, {"KeyCount": 0}, None, None).state is TaskState.SKIPPED


def test_a_glue_job_sensor_describes_the_run_until_it_ends_and_a_failed_run_fails_the_try():
    sensor = integration_of(lambda: GlueJobSensor(task_id="t", job_name="nightly", run_id="{{ ti.xcom_pull('run') }}"))
    assert (sensor.resource, sensor.parameters, sensor.rendered, sensor.push) == (
        "arn:aws:states:::aws-sdk:glue:getJobRun",
        {"JobName": "nightly"},
        ("RunId",),
        False,
    )
    assert sensor.poll is not None and (sensor.poll.interval_seconds, sensor.poll.max_polls) == (120, 5041)
    ran = ended_call(sensor, {"JobRun": {"JobRunState": "SUCCEEDED"}}, None, None)
    assert ran.state is TaskState.SUCCESS
    failed = ended_call(sensor, {"JobRun": {"JobRunState": "FAILED", "ErrorMessage": "OOM"}}, None, None)
    assert (failed.error, failed.final) == ("AirflowException: JobRun FAILED: OOM", False)  # retried, as raised
    never = integration_of(lambda: GlueJobSensor(task_id="t", job_name="j", run_id="r", never_fail=True))
    assert ended_call(never, {"JobRun": {"JobRunState": "STOPPED"}}, None, None).state is TaskState.SKIPPED
    deferred = integration_of(
        lambda: GlueJobSensor(task_id="t", job_name="j", run_id="r", deferrable=True, poke_interval=5, max_retries=4)
    )
    assert deferred.poll is not None and deferred.poll.max_polls == 4  # the provider's trigger gives up then
    assert ended_call(deferred, {"JobRun": {"JobRunState": "RUNNING"}}, None, None).error_type == "AirflowException"


def test_a_redshift_statement_is_executed_then_described_by_its_id_until_it_ends():
    states = _branch(
        lambda: RedshiftData(task_id="t", sql="SELECT {{ ds }}", database="dev", cluster_identifier="c", db_user="u")
    )
    assert (states["t@call"]["Resource"], states["t@call"]["Parameters"]) == (
        "arn:aws:states:::aws-sdk:redshiftdata:executeStatement",
        {
            "ClusterIdentifier": "c",
            "Database": "dev",
            "DbUser": "u",
            "Sql.$": "$.begun.outcome.call.Sql",
            "WithEvent": False,  # as the provider passes it
        },
    )
    assert states["t@describe"]["Resource"] == "arn:aws:states:::aws-sdk:redshiftdata:describeStatement"
    assert states["t@describe"]["Parameters"] == {"Id.$": "$.begun.result.Id"}  # the statement's, from the answer
    assert states["t@pause"]["Seconds"] == 10  # poll_interval
    one = integration_of(lambda: RedshiftData(task_id="t", sql="SELECT 1", workgroup_name="wg"))
    assert ended_call(one, {"Id": "s-1", "Status": "FINISHED"}, None, None).xcoms == '{"return_value":["s-1"]}'
    failed = ended_call(one, {"Id": "s-1", "Status": "FAILED", "Error": "relation does not exist"}, None, None)
    assert failed.error == "RedshiftDataQueryFailedError: Status FAILED: relation does not exist"
    batch = integration_of(lambda: RedshiftData(task_id="t", sql=["SELECT 1", "SELECT 2"], workgroup_name="wg"))
    assert (batch.resource, batch.parameters["Sqls"]) == (
        "arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement",
        ["SELECT 1", "SELECT 2"],
    )
    answer = {"Id": "b", "Status": "FINISHED", "SubStatements": [{"Id": "b:1"}, {"Id": "b:2"}]}
    assert json.loads(ended_call(batch, answer, None, None).xcoms) == {"return_value": ["b:1", "b:2"]}
    alone = integration_of(lambda: RedshiftData(task_id="t", sql="x", workgroup_name="w", wait_for_completion=False))
    assert alone.poll is not None and not alone.poll.waits  # one describe for the ids, no wait
    grants = {a: g.resources for g in one.grants for a in g.actions}
    assert grants["redshift-data:ExecuteStatement"] == (
        "arn:${Partition}:redshift-serverless:${Region}:${Account}:workgroup/*",
    )
    cluster = integration_of(
        lambda: RedshiftData(task_id="t", sql="x", cluster_identifier="c", db_user="etl", database="dev")
    )
    credentials = next(g for g in cluster.grants if g.actions == ("redshift:GetClusterCredentials",))
    assert credentials.resources == (
        "arn:${Partition}:redshift:${Region}:${Account}:dbuser:c/etl",
        "arn:${Partition}:redshift:${Region}:${Account}:dbname:c/dev",
    )


@pytest.mark.parametrize(
    "arguments, refused",
    [
        ({"return_sql_result": True}, "return_sql_result is not translated"),
        ({"session_keep_alive_seconds": 60}, "session_keep_alive_seconds is not translated"),
        ({"workgroup_name": "w"}, "exactly one of cluster_identifier or workgroup_name must be provided"),
    ],
)
def test_what_the_data_api_operator_cannot_translate_is_refused_at_its_line(arguments, refused):
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match=refused):
        RedshiftData(task_id="t", sql="x", cluster_identifier="c", **arguments)


def test_an_athena_sensor_checks_every_sleep_time_until_the_query_ends():
    sensor = integration_of(
        lambda: AthenaQuerySensor(task_id="t", query_execution_id="{{ ti.xcom_pull('q') }}", timeout=60)
    )
    assert (sensor.resource, sensor.rendered, sensor.push) == (
        "arn:aws:states:::aws-sdk:athena:getQueryExecution",
        ("QueryExecutionId",),
        False,
    )
    assert sensor.poll is not None and (sensor.poll.interval_seconds, sensor.poll.max_polls) == (10, 7)  # sleep_time
    done = {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}
    assert ended_call(sensor, done, None, None).state is TaskState.SUCCESS
    cancelled = {"QueryExecution": {"Status": {"State": "CANCELLED", "StateChangeReason": "by hand"}}}
    assert ended_call(sensor, cancelled, None, None).error == "AirflowException: QueryExecution CANCELLED: by hand"
    running = {"QueryExecution": {"Status": {"State": "RUNNING"}}}
    assert ended_call(sensor, running, None, None).error_type == "AirflowSensorTimeout"


def test_an_ecs_task_is_run_and_waited_for_its_requests_keys_as_step_functions_takes_them():
    task = integration_of(
        lambda: EcsRunTask(
            task_id="t",
            cluster="etl",
            task_definition="nightly",
            launch_type="FARGATE",
            overrides={"containerOverrides": [{"name": "main", "environment": [{"name": "DAY", "value": "1"}]}]},
            network_configuration={"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}},
            tags={"team": "data"},
            skip_on_exit_code=3,
        )
    )
    assert (task.resource, task.parameters) == (
        "arn:aws:states:::ecs:runTask.sync",
        {
            "Cluster": "etl",
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {"AwsvpcConfiguration": {"AssignPublicIp": "DISABLED", "Subnets": ["subnet-1"]}},
            "Overrides": {"ContainerOverrides": [{"Environment": [{"Name": "DAY", "Value": "1"}], "Name": "main"}]},
            "Tags": [{"Key": "team", "Value": "data"}],
            "TaskDefinition": "nightly",
        },
    )
    stopped = {"TaskArn": "arn:t", "StoppedReason": "Essential container in task exited"}
    ran = ended_call(task, {**stopped, "Containers": [{"ExitCode": 0}, {"ExitCode": 0}]}, None, None)
    assert (ran.state, json.loads(ran.xcoms)) == (TaskState.SUCCESS, {"ecs_task_arn": "arn:t"})  # no return value
    failed = ended_call(task, {**stopped, "Containers": [{"ExitCode": 0}, {"ExitCode": 1}]}, None, None)
    assert failed.error == (
        "AirflowException: EcsRunTaskOperator's work ended [0, 1]: Essential container in task exited"
    )
    skipped = ended_call(task, {**stopped, "Containers": [{"ExitCode": 3}]}, None, None)
    assert skipped.state is TaskState.SKIPPED  # skip_on_exit_code
    never_started = {"TaskArn": "arn:t", "StoppedReason": "CannotPullContainerError", "Containers": [{}]}
    assert "ended None: CannotPullContainerError" in ended_call(task, never_started, None, None).error
    grants = {a: g.resources for g in task.grants for a in g.actions}
    assert grants["ecs:RunTask"] == ("arn:${Partition}:ecs:${Region}:${Account}:task-definition/nightly:*",)
    assert grants["ecs:StopTask"] == ("arn:${Partition}:ecs:${Region}:${Account}:task/etl/*",)
    assert grants["iam:PassRole"] == ("arn:${Partition}:iam::${Account}:role/*",)  # its roles: the boundary's
    started = integration_of(
        lambda: EcsRunTask(
            task_id="t",
            cluster="etl",
            task_definition="nightly:3",
            overrides={},
            capacity_provider_strategy=[{"capacityProvider": "FARGATE_SPOT"}],
            wait_for_completion=False,
        )
    )
    assert started.resource == "arn:aws:states:::ecs:runTask" and "LaunchType" not in started.parameters
    assert started.also_push == (("ecs_task_arn", "Tasks[0].TaskArn"),) and not started.ended


def test_a_batch_job_is_submitted_and_waited_for_and_its_id_is_the_xcom():
    job = integration_of(
        lambda: Batch(
            task_id="t",
            job_name="nightly",
            job_queue="etl",
            job_definition="nightly",
            container_overrides={"command": ["python", "x.py"], "environment": [{"name": "A", "value": "1"}]},
            parameters={"day": "2026-01-01", "inputFile": "x"},  # the job definition's own names: as given
            submit_job_timeout=600,
        )
    )
    assert (job.resource, job.parameters, job.returns) == (
        "arn:aws:states:::batch:submitJob.sync",
        {
            "ContainerOverrides": {"Command": ["python", "x.py"], "Environment": [{"Name": "A", "Value": "1"}]},
            "JobDefinition": "nightly",
            "JobName": "nightly",
            "JobQueue": "etl",
            "Parameters": {"day": "2026-01-01", "inputFile": "x"},
            "Timeout": {"AttemptDurationSeconds": 600},
        },
        ("JobId",),
    )
    cause = {"JobId": "j-1", "JobName": "nightly", "Status": "FAILED", "StatusReason": "Essential container exited"}
    failed = ended_call(job, None, {"Error": "States.TaskFailed", "Cause": json.dumps(cause)}, None)
    assert failed.error == "States.TaskFailed: Batch job j-1 (nightly) ended FAILED: Essential container exited"
    assert ended_call(job, {"JobId": "j-1", "Status": "SUCCEEDED"}, None, None).xcoms == '{"return_value":"j-1"}'
    grants = {a: g.resources for g in job.grants for a in g.actions}
    assert grants["batch:SubmitJob"] == (
        "arn:${Partition}:batch:${Region}:${Account}:job-queue/etl",
        "arn:${Partition}:batch:${Region}:${Account}:job-definition/nightly:*",
    )
    submitted = integration_of(
        lambda: Batch(task_id="t", job_name="n", job_queue="q", job_definition="d:2", wait_for_completion=False)
    )
    assert submitted.resource == "arn:aws:states:::batch:submitJob" and "batch:DescribeJobs" not in {
        a for g in submitted.grants for a in g.actions
    }
    with DAG("d", start_date=datetime(2026, 1, 1)), pytest.raises(DagDefinitionError, match="job_id is not translated"):
        Batch(task_id="t", job_name="n", job_queue="q", job_definition="d", job_id="j-0")


def test_a_batch_sensor_describes_the_job_until_it_ends():
    sensor = integration_of(lambda: BatchJobSensor(task_id="t", job_id="{{ ti.xcom_pull('submit') }}", poke_interval=5))
    assert (sensor.resource, sensor.rendered) == ("arn:aws:states:::aws-sdk:batch:describeJobs", ("Jobs",))
    running = {"Jobs": [{"Status": "RUNNABLE"}]}
    assert ended_call(sensor, running, None, None).error_type == "AirflowSensorTimeout"
    failed = ended_call(sensor, {"Jobs": [{"Status": "FAILED", "StatusReason": "OOM"}]}, None, None)
    assert failed.error == "AirflowException: Jobs FAILED: OOM"
    assert ended_call(sensor, {"Jobs": [{"Status": "SUCCEEDED"}]}, None, None).state is TaskState.SUCCESS
    deferred = integration_of(
        lambda: BatchJobSensor(task_id="t", job_id="j", deferrable=True, poke_interval=5, max_retries=3)
    )
    assert deferred.poll is not None and deferred.poll.max_polls == 3  # the provider's trigger gives up then


def test_an_emr_serverless_job_run_is_started_then_described_until_it_ends():
    def build():
        EmrServerlessStartJob(
            task_id="t",
            application_id="app1",
            execution_role_arn="arn:aws:iam::123456789012:role/emr",
            job_driver={"sparkSubmit": {"entryPoint": "s3://code/job.py", "entryPointArguments": ["{{ ds }}"]}},
            configuration_overrides={
                "applicationConfiguration": [{"classification": "spark", "properties": {"spark.x.y": "1"}}]
            },
            config={"executionTimeoutMinutes": 60},
            waiter_delay=30,
            waiter_max_attempts=10,
        )

    states = _branch(build)
    call = states["t@call"]
    assert (call["Resource"], call["ResultSelector"]) == (
        "arn:aws:states:::aws-sdk:emrserverless:startJobRun",
        {"JobRun.$": "$"},  # the start's answer kept where getJobRun answers the same ids
    )
    assert call["Parameters"] == {
        "ApplicationId": "app1",
        "ClientToken.$": "States.UUID()",  # a fresh token each try, as the provider's
        "ConfigurationOverrides": {
            "ApplicationConfiguration": [{"Classification": "spark", "Properties": {"spark.x.y": "1"}}]
        },
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/emr",
        "ExecutionTimeoutMinutes": 60,
        "JobDriver.$": "$.begun.outcome.call.JobDriver",
    }
    assert states["t@describe"]["Parameters"] == {
        "ApplicationId": "app1",
        "JobRunId.$": "$.begun.result.JobRun.JobRunId",
    }
    assert states["t@pause"]["Seconds"] == 30
    job = integration_of(build)
    assert (
        ended_call(job, {"JobRun": {"JobRunId": "r1", "State": "SUCCESS"}}, None, None).xcoms == '{"return_value":"r1"}'
    )
    failed = {"JobRun": {"JobRunId": "r1", "State": "FAILED", "StateDetails": "Job failed, ExitCode: 1"}}
    assert ended_call(job, failed, None, None).error == "AirflowException: JobRun FAILED: Job failed, ExitCode: 1"
    still = ended_call(job, {"JobRun": {"JobRunId": "r1", "State": "RUNNING"}}, None, None)
    assert still.error_type == "AirflowException"  # the provider's waiter gave up (waiter_max_attempts)
    grants = {a: g.resources for g in job.grants for a in g.actions}
    assert grants["emr-serverless:StartJobRun"] == (
        "arn:${Partition}:emr-serverless:${Region}:${Account}:/applications/app1",
    )
    assert grants["iam:PassRole"] == ("arn:aws:iam::123456789012:role/emr",)


def test_step_functions_failing_an_ecs_task_is_judged_by_its_exit_codes_and_a_placement_failure_fails():
    task = integration_of(
        lambda: EcsRunTask(task_id="t", cluster="c", task_definition="d", overrides={}, skip_on_exit_code=3)
    )
    stopped = {"TaskArn": "arn:t", "StoppedReason": "Essential container in task exited", "Containers": []}
    # AWS fails runTask.sync when an essential container exits non-zero, the stopped task its cause
    exit_3 = {"Error": "States.TaskFailed", "Cause": json.dumps({**stopped, "Containers": [{"ExitCode": 3}]})}
    assert ended_call(task, None, exit_3, None).state is TaskState.SKIPPED
    exit_1 = {"Error": "States.TaskFailed", "Cause": json.dumps({**stopped, "Containers": [{"ExitCode": 1}]})}
    assert ended_call(task, None, exit_1, None).error == (
        "AirflowException: EcsRunTaskOperator's work ended 1: Essential container in task exited"
    )
    started = integration_of(
        lambda: EcsRunTask(task_id="t", cluster="c", task_definition="d", overrides={}, wait_for_completion=False)
    )
    unplaced = {"Tasks": [], "Failures": [{"Reason": "RESOURCE:MEMORY"}]}
    assert ended_call(started, unplaced, None, None).state is TaskState.FAILED  # as the provider raises
    quiet = integration_of(
        lambda: EcsRunTask(task_id="t", cluster="c", task_definition="d", overrides={}, do_xcom_push=False)
    )
    assert quiet.also_push == ()  # the provider pushes ecs_task_arn only with do_xcom_push


def test_a_maps_keys_are_the_callers_a_structures_members_take_step_functions_case():
    job = integration_of(
        lambda: Batch(
            task_id="t",
            job_name="n",
            job_queue="q",
            job_definition="d",
            eks_properties_override={
                "podProperties": {
                    "containers": [{"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}],
                    "metadata": {"labels": {"team": "data"}},
                }
            },
        )
    )
    pod = job.parameters["EksPropertiesOverride"]["PodProperties"]
    assert pod["Containers"][0]["Resources"]["Limits"] == {"cpu": "1", "nvidia.com/gpu": "1"}
    assert pod["Metadata"]["Labels"] == {"team": "data"}
    spark = integration_of(
        lambda: EmrServerlessStartJob(
            task_id="t",
            application_id="a",
            execution_role_arn="arn:aws:iam::123456789012:role/r",
            job_driver={"sparkSubmit": {"entryPoint": "s3://x.py"}},
            config={"tags": {"cost-center": "42"}},
        )
    )
    assert spark.parameters["Tags"] == {"cost-center": "42"}


def test_a_sensor_whose_answer_has_no_such_work_fails_rather_than_succeeds():
    sensor = integration_of(lambda: BatchJobSensor(task_id="t", job_id="nope"))
    missing = ended_call(sensor, {"Jobs": []}, None, None)  # the provider raises a description error
    assert missing.state is TaskState.FAILED and "the answer has no Jobs[0].Status" in missing.error


def test_default_args_pass_the_providers_arguments_to_the_operators_that_take_them():
    with airflow_imports():
        from airflow.providers.amazon.aws.operators.athena import AthenaOperator
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
        from airflow.sdk import TaskGroup, task

        with DAG("defaults", default_args={"region_name": "us-east-1", "poke_interval": 7, "deferrable": True}):
            query = AthenaOperator(task_id="query", query="SELECT 1")
            waits = S3KeySensor(task_id="waits", bucket_key="s3://lake/x")
            given = S3KeySensor(task_id="given", bucket_key="s3://lake/x", poke_interval=3)
            with TaskGroup("group", default_args={"poke_interval": 11}):
                grouped = S3KeySensor(task_id="grouped", bucket_key="s3://lake/x")

            @task
            def plain() -> int:  # takes none of them: none passed
                return 1

            plain()
    assert (query.region_name, query.deferrable) == ("us-east-1", True)
    assert (waits.poke_interval, given.poke_interval, grouped.poke_interval) == (7, 3, 11)


def test_default_args_fill_each_class_s_own_parameters_so_a_subclass_keeps_what_it_passes_on():
    with airflow_imports():
        from airflow.sdk import BaseSensorOperator

        class RescheduleSensor(BaseSensorOperator):
            def __init__(self, *, path: str, **kwargs: object) -> None:
                super().__init__(mode="reschedule", **kwargs)  # (Airflow's apply_defaults keeps it)
                self.path = path

            def poke(self, context: object) -> bool:
                return True

        with DAG("kept", default_args={"mode": "poke", "poke_interval": 9}):
            sensor = RescheduleSensor(task_id="s", path="x")
    assert (sensor.mode, sensor.poke_interval) == ("reschedule", 9)


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("upstream", "bucket_key comes from an upstream task: give bucket_name"),
        ("'{{ params.path }}'", "bucket_key is a template ('{{ params.path }}'): give bucket_name"),
    ],
)
def test_an_s3_key_known_only_at_run_needs_its_bucket_given(key, named):
    with airflow_imports():
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
        from airflow.sdk import task

        with DAG("unbucketed"):

            @task
            def path() -> str:
                return "s3://lake/x"

            upstream = path()  # noqa: F841 - named by the parametrized expression
            with pytest.raises(DagDefinitionError, match=re.escape(named)):
                S3KeySensor(task_id="wait", bucket_key=eval(key))  # noqa: S307 - a test's own literal
