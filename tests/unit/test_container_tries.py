"""The runner's side of a container try: what the container wrote is the try's result; nothing
written is a failure naming ECS's account of the end; a result that cannot be one fails the try;
an S3 error other than the object's absence is raised (the step is retried, the outcome kept)."""

import json
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from airstep.containers import ContainerPolicy, overrides, result_uri
from airstep.runtime import container_tries
from airstep.runtime.clients import registry
from airstep.runtime.executor import TryResult
from airstep.states import TaskState

REQUEST = "s3://xcoms/handoff/d/r/t/-1/1-abc/request.json"
CALL = {"Overrides": overrides(ContainerPolicy(1024, 2048), REQUEST)}


@pytest.fixture
def bucket():
    with mock_aws():
        registry.reset()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="xcoms")
        yield s3
        registry.reset()


def _write(s3, body: bytes) -> None:
    key = result_uri(REQUEST).removeprefix("s3://xcoms/")
    s3.put_object(Bucket="xcoms", Key=key, Body=body)


def test_what_the_container_wrote_is_the_tries_result(bucket):
    _write(bucket, json.dumps(TryResult(TaskState.SUCCESS, xcoms='{"return_value":7}').to_dict()).encode())
    result, ran = container_tries.taken_back(CALL, {"LastStatus": "STOPPED"}, None)
    assert ran and result.state is TaskState.SUCCESS and result.xcoms == '{"return_value":7}'


def test_nothing_written_fails_the_try_with_what_ecs_said(bucket):
    stopped = {"StopCode": "TaskFailedToStart", "StoppedReason": "CannotPullContainerError", "Containers": []}
    result, ran = container_tries.taken_back(CALL, None, {"Error": "States.TaskFailed", "Cause": json.dumps(stopped)})
    assert not ran and result.state is TaskState.FAILED
    assert result.error == (
        "the task's container ended without reporting a result: States.TaskFailed: StopCode TaskFailedToStart; "
        "StoppedReason CannotPullContainerError"
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "wrote a result that cannot be read (JSONDecodeError)"),
        (json.dumps({"state": None, "unloadable": True, "error": "no such bundle"}).encode(), "could not be loaded"),
        (json.dumps({"state": "up_for_reschedule"}).encode(), "which a try in a container cannot end in"),
    ],
)
def test_a_result_that_cannot_be_the_tries_fails_it(bucket, body, says):
    _write(bucket, body)
    result, _ = container_tries.taken_back(CALL, {}, None)
    assert result.state is TaskState.FAILED and says in result.error


def test_an_s3_error_other_than_absence_is_raised_not_taken_for_a_failed_try(bucket):
    refused = ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "GetObject")
    with mock.patch.object(bucket, "get_object", side_effect=refused):  # (moto throttles nothing)
        with mock.patch("airstep.runtime.container_tries.client", return_value=bucket), pytest.raises(ClientError):
            container_tries.result_of(CALL)
