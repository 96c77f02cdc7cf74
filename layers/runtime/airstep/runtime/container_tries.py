"""The task runner's side of a try that runs in a container (airstep.containers): the run step
hands the try's request over, the record step takes its result back."""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from airstep.containers import REQUEST_OBJECT, overrides, request_uri_of, result_uri
from airstep.model import TaskModel
from airstep.runtime.clients import client
from airstep.runtime.executor import TryRequest, TryResult
from airstep.runtime.xcoms import HANDOFF_PREFIX, object_key, put_json, s3_location, xcom_bucket
from airstep.secrets_masker import redact
from airstep.states import TaskState

NO_RESULT = "ContainerEndedWithoutResult"


def hand_over(task: TaskModel, request: TryRequest) -> TryResult:
    """Write the try's request to the XCom bucket; the try calls ECS with where it is (its key is
    the try's and a random part, which only the try's container learns)."""
    assert task.container is not None
    bucket = xcom_bucket(f"a container try of task {task.task_id!r} needs the XCom bucket")
    owner = request.owner
    key = object_key(
        HANDOFF_PREFIX,
        owner.dag_id,
        owner.run_id,
        owner.task_id,
        str(owner.map_index),
        f"{owner.try_number}-{uuid.uuid4().hex}",
        REQUEST_OBJECT,
    )
    uri = put_json(bucket, key, json.dumps(request.to_event()).encode())
    return TryResult(TaskState.RUNNING, call={"Overrides": overrides(task.container, uri)})


def taken_back(call: dict[str, Any], result: Any, error: dict[str, Any] | None) -> tuple[TryResult, bool]:
    """The try's result as its container wrote it, and True; or, when it wrote none (it could not
    start, was stopped at its time limit, ran out of memory), the try failed with what ECS or Step
    Functions said, and False."""
    written = result_of(call)
    if written is not None:
        return written, True
    if error is not None:
        why = f"{error.get('Error', 'an error')}: {_stopped(error.get('Cause'))}"
    else:
        why = f"it stopped ({_stopped(result)}) without writing the try's result"
    message = f"the task's container ended without reporting a result: {why}"
    return TryResult(TaskState.FAILED, error=redact(message), error_type=NO_RESULT), False


def result_of(call: dict[str, Any]) -> TryResult | None:
    """What the container of the try making `call` wrote, or None when it wrote nothing (yet). An
    error reading it other than its absence raises: the step is retried, the try's outcome kept."""
    uri = request_uri_of(call)
    if uri is None:
        return None
    bucket, key = s3_location(result_uri(uri))
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied"):  # (no ListBucket)
            return None
        raise
    try:
        written = TryResult.from_dict(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        return _failed(f"the task's container wrote a result that cannot be read ({type(exc).__name__})")
    if written.unloadable:  # (not the task's fault: another try may load it)
        return _failed(f"the DAG could not be loaded in the task's container: {written.error}")
    if written.state not in (TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED) or written.trigger:
        return _failed(f"the task's container reported {written.state}, which a try in a container cannot end in")
    return written


def _failed(message: str) -> TryResult:
    return TryResult(TaskState.FAILED, error=redact(message), error_type=NO_RESULT)


def _stopped(described: Any) -> str:
    """What a stopped ECS task's description (or an error's cause) says of its end, briefly."""
    if isinstance(described, str):
        try:
            described = json.loads(described)
        except ValueError:
            return described[:500]
    if not isinstance(described, dict):
        return str(described)[:500]
    codes = [c.get("ExitCode") for c in described.get("Containers", []) if isinstance(c, dict)]
    parts = [f"{key} {described[key]}" for key in ("StopCode", "StoppedReason") if described.get(key)] + [
        f"exit code {code}" for code in codes if code is not None
    ]
    return "; ".join(parts) or json.dumps(described, default=str)[:500]
