"""Each DAG's IAM policy, from what its AWS operators' calls need: the resources named exactly where
the DAG names them, a prefix and `*` where a template decides, nothing for a DAG without them; and
the environment's permissions boundary, which refuses a DAG that asks for more, naming the task."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from airstep.compat.imports import airflow_imports
from airstep.model import DagModel
from airstep.sdk.dag import DAG
from airstep_compiler import CompileError, CompileOptions, DagSource, compile_dag
from airstep_compiler.iam import Boundary, dag_policy, outside_boundary, platform_targets, policy_chars, resolved
from helpers import EXAMPLES, load_model

with airflow_imports():
    from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
    from airflow.providers.amazon.aws.operators.s3 import S3CopyObjectOperator
    from airflow.providers.amazon.aws.operators.sqs import SqsPublishOperator
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
    from airflow.providers.standard.operators.empty import EmptyOperator


def _policy(build) -> dict | None:
    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        build()
    return dag_policy(DagModel.from_dag(dag))


def test_the_example_asks_for_each_call_on_each_resource_it_names():
    model, source = load_model(EXAMPLES / "aws_calls.py")
    policy = compile_dag(model, source, CompileOptions()).policy
    assert policy is not None
    by_action: dict[str, list[str]] = {}
    for statement in policy["Statement"]:
        for action in statement["Action"]:
            by_action[action] = sorted({*by_action.get(action, []), *statement["Resource"]})
    assert by_action["glue:StartJobRun"] == ["arn:${Partition}:glue:${Region}:${Account}:job/daily-transform"]
    assert by_action["glue:StartCrawler"] == ["arn:${Partition}:glue:${Region}:${Account}:crawler/daily-tables"]
    assert by_action["sns:Publish"] == ["arn:aws:sns:us-east-1:123456789012:pipeline-events"]
    assert by_action["sqs:SendMessage"] == ["arn:${Partition}:sqs:us-east-1:123456789012:reports"]
    assert by_action["lambda:InvokeFunction"] == [
        "arn:${Partition}:lambda:${Region}:${Account}:function:score",
        "arn:${Partition}:lambda:${Region}:${Account}:function:score:*",
    ]
    assert by_action["s3:DeleteObject"] == ["arn:${Partition}:s3:::example-lake/raw/*"]  # (Athena only reads)
    assert "states:StartExecution" not in by_action and "ecs:RunTask" not in by_action  # nothing it does not call
    again = compile_dag(model, source, CompileOptions()).policy
    assert json.dumps(again) == json.dumps(policy)  # the same DAG, the same policy


def test_a_templated_name_is_its_prefix_and_a_star():
    policy = _policy(
        lambda: S3CopyObjectOperator(
            task_id="t",
            source_bucket_key="s3://lake/raw/{{ ds }}.csv",
            dest_bucket_key="s3://archive/{{ params.area }}/x.csv",
            source_version_id="v1",
        )
    )
    assert policy is not None
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": ["s3:GetObjectVersion"], "Resource": ["arn:${Partition}:s3:::lake/raw/*"]},
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:${Partition}:s3:::archive/*"]},
    ]
    queue = _policy(lambda: SqsPublishOperator(task_id="t", sqs_queue="{{ var.value.queue }}", message_content="m"))
    assert queue is not None and queue["Statement"][0]["Resource"] == ["arn:${Partition}:sqs:*:*:*"]
    assert _policy(lambda: EmptyOperator(task_id="t")) is None  # no calls of its own: the shared role


def test_the_policy_is_filled_in_for_an_environment():
    policy = _policy(lambda: S3KeySensor(task_id="t", bucket_key="s3://lake/a.csv"))
    assert policy is not None
    filled = resolved(policy, "aws-cn", "cn-north-1", "111122223333")
    assert filled["Statement"][0]["Resource"] == ["arn:aws-cn:s3:::lake"]
    invoke = _policy(lambda: LambdaInvokeFunctionOperator(task_id="t", function_name="f"))
    assert invoke is not None
    assert resolved(invoke, "aws", "eu-west-1", "111122223333")["Statement"][0]["Resource"][0] == (
        "arn:aws:lambda:eu-west-1:111122223333:function:f"
    )


def test_a_dag_asking_for_more_than_the_boundary_is_refused_naming_the_task_action_and_resource():
    model, _ = load_model(EXAMPLES / "aws_calls.py")
    everything = Boundary(("*",), ("*",))
    assert outside_boundary(model, everything, "aws", "us-east-1", "123456789012") == []
    no_athena = Boundary(("glue:*", "s3:*", "sns:Publish", "sqs:SendMessage", "lambda:InvokeFunction"), ("*",))
    ((task, problem),) = outside_boundary(model, no_athena, "aws", "us-east-1", "123456789012")
    assert task == "count"
    assert problem.startswith("task 'count' calls athena:StartQueryExecution on arn:aws:athena:us-east-1:")
    lake_only = Boundary(("*",), ("arn:aws:s3:::example-lake*", "arn:aws:glue:*", "arn:aws:athena:*"))
    problems = [problem for _, problem in outside_boundary(model, lake_only, "aws", "us-east-1", "123456789012")]
    assert [p.split(" calls ")[0] for p in problems] == ["task 'score'", "task 'notify'", "task 'enqueue'"]
    assert "lambda:InvokeFunction on arn:aws:lambda:us-east-1:123456789012:function:score" in problems[0]
    assert "DagBoundaryActions and DagBoundaryResources" in problems[0]


def test_a_policy_over_iams_size_limit_is_a_compile_error_naming_the_limit():
    with DAG("many", start_date=datetime(2026, 1, 1)) as dag:
        for n in range(200):
            LambdaInvokeFunctionOperator(task_id=f"t{n}", function_name=f"a-function-with-a-long-name-number-{n}")
    model = DagModel.from_dag(dag)
    policy = dag_policy(model)
    assert policy is not None and policy_chars(policy) > 10_240
    with pytest.raises(CompileError, match="over IAM's 10,240 for a role's policies") as raised:
        compile_dag(model, DagSource("many.py", "v1"), CompileOptions())
    assert raised.value.limit == "policy-size"


def test_a_dag_calling_the_platforms_own_functions_or_machines_is_named():
    with airflow_imports():
        from airflow.providers.amazon.aws.operators.step_function import StepFunctionStartExecutionOperator

    with DAG("d", start_date=datetime(2026, 1, 1)) as dag:
        LambdaInvokeFunctionOperator(task_id="forge", function_name="airstep-prod-run-task", payload="{}")
        StepFunctionStartExecutionOperator(
            task_id="other", state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:airstep-prod-etl"
        )
        LambdaInvokeFunctionOperator(task_id="fine", function_name="score")
    found = platform_targets(DagModel.from_dag(dag), "prod", "aws", "us-east-1", "123456789012")
    assert [task for task, _ in found] == ["forge", "other"]
    assert "one of this environment's own: a DAG's calls may not" in found[0][1]
