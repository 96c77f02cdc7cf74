"""How the task runner ends a service integration's try (airstep.sdk.operators.amazon): what the
call returned is the task's XCom, as the operator returns it in Airflow; what it raised, the try's
error, named as Step Functions names it (`SNS.NotFoundException`, a Lambda function's error type,
`States.Timeout` for a call past its execution_timeout)."""

from __future__ import annotations

import json
from typing import Any

from airstep.contract import DESCRIBED, STATES_TIMEOUT, XCOM_RETURN_KEY
from airstep.integration import Integration, Poll, at_path
from airstep.runtime.executor import TryResult
from airstep.runtime.xcoms import INLINE_XCOM_BYTES
from airstep.secrets_masker import redact
from airstep.states import TaskState

TIMED_OUT = "AirflowTaskTimeout"
SENSOR_TIMED_OUT = "AirflowSensorTimeout"


def ended_call(
    integration: Integration,
    result: Any,
    error: dict[str, Any] | None,
    time_limit: float | None,
    rendered: dict[str, Any] | None = None,
) -> TryResult:
    """The try's result from its call's response (`result`), or from the `error` it raised
    (`rendered`: the parameters its run step rendered)."""
    if error is not None:
        ended = _ended_in_failure(integration, error)  # (an ECS task whose container exited non-zero)
        return ended if ended is not None else _failed(error, time_limit)
    parameters = {**integration.parameters, **(rendered or {})}
    if integration.poll is not None:
        unfinished = _unfinished(integration.poll, result, time_limit, parameters)
        if unfinished is not None:
            return unfinished
    reported = at_path(result, integration.errors) if integration.errors else None
    if reported:
        text = redact(json.dumps(reported, default=str))
        return TryResult(
            TaskState.FAILED, error=f"AirflowException: errors in the response: {text}", error_type="AirflowException"
        )
    if integration.ended:
        judged = _judged_end(integration, result)
        if judged is not None:
            return judged
    pushed = {  # (`@Name`: the call's own parameter)
        key: parameters.get(path[1:]) if path.startswith("@") else at_path(result, path)
        for key, path in integration.also_push
    }
    if integration.push:
        pushed[XCOM_RETURN_KEY] = _returned(integration, result or {})
    if not pushed:
        return TryResult(TaskState.SUCCESS)
    xcoms = json.dumps(pushed, separators=(",", ":"))
    if len(xcoms.encode()) > INLINE_XCOM_BYTES:  # (the runner writes no XCom object: its role may not)
        return TryResult(
            TaskState.FAILED,
            error=f"the call's result is {len(xcoms.encode()):,} bytes as JSON: airstep keeps a service call's "
            f"result in its task's record, up to {INLINE_XCOM_BYTES:,} bytes",
            error_type="XComError",
            final=True,  # another try would get as much
        )
    return TryResult(TaskState.SUCCESS, xcoms=xcoms)


def _unfinished(poll: Poll, described: Any, time_limit: float | None, parameters: dict[str, Any]) -> TryResult | None:
    """A failed (or skipped) try when the last describe call found the work still running (at
    execution_timeout, or when the operator's waiter or the sensor's timeout ran out) or ended in
    failure (a failed crawl); None when it ended well (or is not waited for)."""
    status = at_path(described, poll.status)
    if poll.running and status is None and not poll.until:  # the answer has no such work (a job never made)
        answer = redact(json.dumps(described, default=str))[:500]
        error = f"{poll.failed_as}: the answer has no {poll.status}: {answer}"
        return TryResult(TaskState.FAILED, error=error, error_type=poll.failed_as)
    if poll.until:
        expected = str(parameters.get(poll.until))
        still = not isinstance(status, str) or not (
            status.startswith(expected) if poll.until_prefix else status == expected
        )
    else:
        still = bool(poll.running) and status in poll.running
    if still:
        waiter = poll.max_polls * poll.interval_seconds
        shown = f"still {status}" if not poll.until else f"the last check found {poll.status} = {status!r}"
        if time_limit is not None and time_limit < waiter:
            error, name = f"{TIMED_OUT}: {shown} at execution_timeout ({time_limit:g} s)", TIMED_OUT
        elif poll.timeout_as == SENSOR_TIMED_OUT:
            name = SENSOR_TIMED_OUT
            error = f"{name}: Sensor has timed out after about {waiter:,} s; {shown}"
        else:
            error = f"{poll.timeout_as}: {shown} after the waiter's {poll.max_polls} checks (about {waiter:,} s)"
            name = poll.timeout_as
        if poll.skip_timeout:
            return TryResult(TaskState.SKIPPED, error=f"skipped (soft_fail or never_fail): {error}")
        return TryResult(TaskState.FAILED, error=error, error_type=name, final=name == SENSOR_TIMED_OUT)
    failure = at_path(described, poll.failure)
    if failure in poll.failed:
        message = at_path(described, poll.message)
        subject = poll.status.removeprefix(f"{DESCRIBED}.").split(".")[0].split("[")[0]  # (`Step`, not `described`)
        text = f"{subject} {failure}" + (f": {redact(str(message))}" if message else "")
        if poll.skip_failed:
            return TryResult(TaskState.SKIPPED, error=f"skipped (never_fail): {poll.failed_as}: {text}")
        return TryResult(TaskState.FAILED, error=f"{poll.failed_as}: {text}", error_type=poll.failed_as)
    return None


def _returned(integration: Integration, response: dict[str, Any]) -> Any:
    """What the operator returns: the response's keys it keeps; Lambda's payload as the JSON text it
    was (an asynchronous invocation's empty payload is the empty string, as in Airflow)."""
    if integration.returns_value:
        value = at_path(response, integration.returns[0])
        return value if not integration.returns_list or isinstance(value, list) else [value]
    if not integration.as_text:
        return {key: response[key] for key in integration.returns if key in response}
    payload = response.get("Payload", "")
    return payload if payload == "" else json.dumps(payload)


def _judged_end(integration: Integration, result: Any) -> TryResult | None:
    """A failed (or skipped) try when the work ended in a state the operator does not count a
    success (an ECS container's exit code other than 0); None when it succeeded."""
    ends = at_path(result, integration.ended)
    ends = ends if isinstance(ends, list) else [ends]  # (each of an ECS task's containers has its exit code)
    if all(end in integration.succeeded for end in ends):
        return None
    shown = ends[0] if len(ends) == 1 else ends
    why = at_path(result, integration.reason) if integration.reason else None
    text = f"{integration.operator}'s work ended {shown}" + (f": {redact(str(why))}" if why else "")
    if any(end in integration.skip_on for end in ends):
        return TryResult(TaskState.SKIPPED, error=f"skipped: {text}")
    return TryResult(TaskState.FAILED, error=f"AirflowException: {text}", error_type="AirflowException")


def _ended_in_failure(integration: Integration, error: dict[str, Any]) -> TryResult | None:
    """Step Functions fails a waited-for ECS task whose essential container exited non-zero, its
    cause the stopped task: judged as its end (skip_on_exit_code, the task's stopped reason)."""
    if "[*]" not in integration.ended or error.get("Error") != "States.TaskFailed":  # (ECS's containers only)
        return None
    try:
        described = json.loads(str(error.get("Cause") or ""))
    except ValueError:
        return None
    if not isinstance(described, dict) or at_path(described, integration.ended.split(".")[0].split("[")[0]) is None:
        return None
    return _judged_end(integration, described)


def _failed(error: dict[str, Any], execution_timeout: float | None) -> TryResult:
    name = str(error.get("Error") or "States.TaskFailed")
    cause = redact(str(error.get("Cause") or ""))
    if name == STATES_TIMEOUT:
        limit = f"{execution_timeout:g} s" if execution_timeout is not None else "its limit"
        return TryResult(
            TaskState.FAILED, error=f"{TIMED_OUT}: the call ran past execution_timeout ({limit})", error_type=TIMED_OUT
        )
    return TryResult(TaskState.FAILED, error=f"{name}: {_message(cause)}" if cause else name, error_type=name)


def _message(cause: str) -> str:
    """A Lambda function's error arrives as its JSON error object, a Glue job run's end as the run, an
    Athena query's as its execution, a Batch job's as the job: their message reads better."""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    if isinstance(parsed, dict) and isinstance(parsed.get("QueryExecution"), dict):
        parsed = parsed["QueryExecution"]
    if isinstance(parsed, dict) and isinstance(parsed.get("Status"), dict) and "QueryExecutionId" in parsed:
        status = parsed["Status"]
        ended = f"Athena query {parsed['QueryExecutionId']} ended {status.get('State')}"
        return f"{ended}: {status['StateChangeReason']}" if status.get("StateChangeReason") else ended
    if isinstance(parsed, dict) and "JobId" in parsed and "Status" in parsed:  # a Batch job
        ended = f"Batch job {parsed['JobId']} ({parsed.get('JobName')}) ended {parsed['Status']}"
        return f"{ended}: {parsed['StatusReason']}" if parsed.get("StatusReason") else ended
    if isinstance(parsed, dict) and "JobRunState" in parsed:
        ended = f"Glue job run {parsed.get('Id')} of {parsed.get('JobName')} ended {parsed['JobRunState']}"
        return f"{ended}: {parsed['ErrorMessage']}" if parsed.get("ErrorMessage") else ended
    return cause
