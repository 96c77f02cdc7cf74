"""Small typed builders for the Amazon States Language states airstep emits (JSONPath only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_INVOKE_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken"

# The retrier AWS recommends on every Lambda task, for errors of the Lambda service itself.
LAMBDA_SERVICE_RETRIER: dict[str, Any] = {
    "ErrorEquals": [
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
}

# What the task runner raises when a task try fails and may be retried (see airstep.runtime.errors).
TASK_FAILED_ERROR = "AirstepTaskFailed"
# Failures of a try that the runner could not report itself: timeout, crash, out of memory.
RETRYABLE_ERRORS = [TASK_FAILED_ERROR, "States.Timeout", "Lambda.Unknown"]


@dataclass(slots=True)
class LambdaTask:
    """A Task state invoking the task-runner function with a fixed payload plus the run context."""

    function_name: str
    payload: dict[str, Any]
    next: str | None
    timeout_seconds: int
    retriers: list[dict[str, Any]] = field(default_factory=list)
    catch_next: str | None = None
    wait_for_token: bool = False
    result_path: str | None = None
    result_selector: dict[str, str] | None = None

    def to_asl(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": LAMBDA_INVOKE_WAIT if self.wait_for_token else LAMBDA_INVOKE,
            "Parameters": {"FunctionName": self.function_name, "Payload": self.payload},
            "TimeoutSeconds": self.timeout_seconds,
        }
        if self.result_selector is not None:
            state["ResultSelector"] = self.result_selector
        state["ResultPath"] = self.result_path
        state["Retry"] = [LAMBDA_SERVICE_RETRIER, *self.retriers]
        if self.catch_next is not None:
            state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": self.catch_next}]
        _link(state, self.next)
        return state


@dataclass(slots=True)
class ParallelBlock:
    branches: list[dict[str, Any]]
    next: str | None

    def to_asl(self) -> dict[str, Any]:
        state: dict[str, Any] = {"Type": "Parallel", "Branches": self.branches, "ResultPath": None}
        _link(state, self.next)
        return state


@dataclass(slots=True)
class InitRun:
    """Pass state that puts the DAG's identity beside the execution input: `{"dag": ..., "run": ...}`."""

    dag: dict[str, str]
    next: str

    def to_asl(self) -> dict[str, Any]:
        return {"Type": "Pass", "Parameters": {"dag": self.dag, "run.$": "$"}, "Next": self.next}


def _link(state: dict[str, Any], next_name: str | None) -> None:
    if next_name is None:
        state["End"] = True
    else:
        state["Next"] = next_name
