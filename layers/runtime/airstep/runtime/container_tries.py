"""The task runner's side of a try that runs in a container (airstep.containers): the run step
hands the try's request over, the record step takes its result back."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from airstep.containers import REQUEST_OBJECT, overrides, request_uri_of, result_uri
from airstep.model import TaskModel
from airstep.runtime.constants import XCOM_BUCKET_ENV
from airstep.runtime.executor import TryRequest, TryResult
from airstep.runtime.xcoms import HANDOFF_PREFIX, XComError, object_key, put_json, read_object
from airstep.secrets_masker import redact
from airstep.states import TaskState

NO_RESULT = "ContainerEndedWithoutResult"


def hand_over(task: TaskModel, request: TryRequest) -> TryResult:
    """Write the try's request to the XCom bucket; the try calls ECS with where it is (its key is
    the try's and a random part, which only the try's container learns)."""
    assert task.container is not None
    bucket = os.environ.get(XCOM_BUCKET_ENV)
    if not bucket:
        raise XComError(f"a container try of task {task.task_id!r} needs the XCom bucket ({XCOM_BUCKET_ENV})")
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
    uri = request_uri_of(call)
    if uri is not None:
        try:
            return TryResult.from_dict(json.loads(read_object(result_uri(uri), "container's result"))), True
        except XComError:
            pass
    if error is not None:
        why = f"{error.get('Error', 'an error')}: {_stopped(error.get('Cause'))}"
    else:
        why = f"it stopped ({_stopped(result)}) without writing the try's result"
    message = f"the task's container ended without reporting a result: {why}"
    return TryResult(TaskState.FAILED, error=redact(message), error_type=NO_RESULT), False


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
