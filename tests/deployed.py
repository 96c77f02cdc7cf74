"""A deployed stack's parts on moto, for tests of the deployed path: the compile function's Deployer,
the DAG bucket, EventBridge Scheduler (whose schedules moto never fires: `fire` does), the audit log group."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import boto3

from airstep.runtime.audit import CloudWatchAuditLog
from airstep.runtime.run_starter import start_scheduled_run
from airstep.runtime.run_tracker import execution_detail, status_event, track_and_count
from airstep_compiler.deploy import Deployer, LambdaParser, Settings
from airstep_local.engine import ACCOUNT, DEFAULT_NAMES, FUNCTION_NAME, PARSER_NAME, REGION, LocalEngine

BUCKET = "airstep-dev-dags"
TASK_LOG_GROUP = "/aws/lambda/airstep-dev-execute-task"
AUDIT_LOG_GROUP = "/airstep/dev/audit"
UPLOADER = "AWS:AIDAEXAMPLEUPLOADER"  # who uploads DAG files in these tests (the S3 event's principal)


@contextmanager
def deployed_platform() -> Iterator[tuple]:
    """A stack's parts on moto: (local engine, compile function's Deployer, s3, scheduler)."""
    with LocalEngine() as engine:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        scheduler = boto3.client("scheduler")
        scheduler.create_schedule_group(Name="airstep-dev")
        boto3.client("logs").create_log_group(logGroupName=AUDIT_LOG_GROUP)
        dlq = boto3.client("sqs").create_queue(QueueName="airstep-dev-schedule-dlq")["QueueUrl"]
        settings = Settings(
            environment="dev",
            task_runner_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}",
            state_machine_role_arn=f"arn:aws:iam::{ACCOUNT}:role/airstep-dev-state-machines",
            start_run_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:airstep-dev-start-run",
            scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/airstep-dev-scheduler",
            schedule_group="airstep-dev",
            schedule_dlq_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{dlq.rsplit('/', 1)[-1]}",
            parser_function=PARSER_NAME,
            executor_function=DEFAULT_NAMES.execute_task,
        )
        functions = boto3.client("lambda")
        parser = LambdaParser(PARSER_NAME, functions)
        deployer = Deployer(
            settings,
            s3=s3,
            sfn=engine.sfn,
            scheduler=scheduler,
            store=engine.store,
            parser=parser,
            lambda_client=functions,
            sqs=boto3.client("sqs"),
            audit=CloudWatchAuditLog(boto3.client("logs"), AUDIT_LOG_GROUP, "compile-dags"),
        )
        yield engine, deployer, s3, scheduler


def upload(s3, key, text):
    response = s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
    size = len(text.encode())
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": UPLOADER},
                "s3": {
                    "bucket": {"name": BUCKET},
                    "object": {"key": key, "versionId": response["VersionId"], "size": size},
                },
            }
        ]
    }
    return response["VersionId"], event


def removal(s3, key):
    s3.delete_object(Bucket=BUCKET, Key=key)
    return {
        "Records": [
            {
                "eventName": "ObjectRemoved:Delete",
                "userIdentity": {"principalId": UPLOADER},
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
            }
        ]
    }


def fire(engine, scheduler, when, name="airstep-dev-nightly"):
    """Start the run that EventBridge Scheduler would start at `when` (moto's schedules never fire)."""
    target = scheduler.get_schedule(Name=name, GroupName="airstep-dev")["Target"]
    event = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", when))
    started = start_scheduled_run(event, engine.sfn, engine.store)
    if started["execution_arn"] is None:  # queued behind the DAG's max_active_runs
        return started
    while engine.sfn.describe_execution(executionArn=started["execution_arn"])["status"] == "RUNNING":
        time.sleep(0.02)
    description = engine.sfn.describe_execution(executionArn=started["execution_arn"])
    event = status_event(execution_detail(description))
    track_and_count(event, engine.store, engine.sfn, engine.session.client("lambda"))  # frees its slot
    return started


def quiesce(engine, seconds=60):
    """Wait until no execution runs (a first deploy starts the runs it caught up on)."""
    deadline = time.monotonic() + seconds
    while running := [
        execution["name"]
        for m in engine.sfn.list_state_machines()["stateMachines"]
        for execution in engine.sfn.list_executions(stateMachineArn=m["stateMachineArn"], statusFilter="RUNNING")[
            "executions"
        ]
    ]:
        assert time.monotonic() < deadline, f"executions still running after {seconds} s: {running}"
        time.sleep(0.02)


def cli_stack():
    """The CloudFormation stack `--stack airstep-dev` names: its outputs say where the metadata table
    and the schedule group are (those of the platform above)."""
    outputs = {
        "MetadataTableName": {"Value": "airstep-local"},
        "ScheduleGroupName": {"Value": "airstep-dev"},
        "TaskLogGroupName": {"Value": TASK_LOG_GROUP},
        "AuditLogGroupName": {"Value": AUDIT_LOG_GROUP},
    }
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}
    boto3.client("cloudformation").create_stack(StackName="airstep-dev", TemplateBody=json.dumps(template))


def moto_function(name):
    """A function of that name in moto's Lambda, as an event source mapping needs one to exist (its
    invocations never reach moto: the local session answers them with our handler)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = boto3.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )
