"""Typed builders for the Amazon States Language states airstep emits (JSONPath, Standard workflows).

Each builder's `to_asl()` gives the state's JSON in a fixed key order, so output is byte-stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airstep.contract import CAUGHT_ERROR_PATH, LAMBDA_THROTTLED, RUNNER_ERROR, STATES_ALL

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
# Throttling is not in AWS's recommended retrier: without this, a throttled invocation fails a task
# that never ran. Full jitter spreads a burst of throttled states apart.
LAMBDA_THROTTLE_RETRIER: dict[str, Any] = {
    "ErrorEquals": [LAMBDA_THROTTLED],
    "IntervalSeconds": 1,
    "MaxAttempts": 10,
    "BackoffRate": 2,
    "MaxDelaySeconds": 30,
    "JitterStrategy": "FULL",
}
# The runner itself failed (the store, a DAG file that would not load): try again, without using one
# of the task's retries.
RUNNER_RETRIER: dict[str, Any] = {
    "ErrorEquals": [RUNNER_ERROR],
    "IntervalSeconds": 2,
    "MaxAttempts": 4,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
PLATFORM_RETRIERS = (LAMBDA_SERVICE_RETRIER, LAMBDA_THROTTLE_RETRIER, RUNNER_RETRIER)
# A step without a Catch (a gate, the run's verdict) ends the execution when it fails, and the run
# record with it: its runner errors are tried longer (about four minutes at most, two on average).
UNCAUGHT_RUNNER_RETRIER: dict[str, Any] = {**RUNNER_RETRIER, "MaxAttempts": 8, "MaxDelaySeconds": 60}

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Retrier:
    """One `Retry` entry."""

    errors: tuple[str, ...]
    interval_seconds: int
    max_attempts: int
    backoff_rate: float
    max_delay_seconds: int | None = None

    def to_asl(self) -> dict[str, Any]:
        retrier: dict[str, Any] = {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
        }
        if self.max_delay_seconds is not None:
            retrier["MaxDelaySeconds"] = self.max_delay_seconds
        return retrier


@dataclass(frozen=True, slots=True)
class LambdaTask:
    """A Task state invoking the task-runner function with `payload`."""

    function_name: str
    payload: dict[str, Any]
    next: str | None
    timeout_seconds: int
    retriers: tuple[Retrier, ...] = ()
    catch_next: str | None = None
    wait_for_token: bool = False
    result_path: str | None = None
    result_selector: dict[str, str] | None = None
    drop_output: bool = False  # a child execution's last state: its output is {}

    @property
    def kind(self) -> str:
        return "Wait" if self.wait_for_token else "Task"

    def to_asl(self) -> State:
        state: State = {
            "Type": "Task",
            "Resource": LAMBDA_INVOKE_WAIT if self.wait_for_token else LAMBDA_INVOKE,
            "Parameters": {"FunctionName": self.function_name, "Payload": self.payload},
            "TimeoutSeconds": self.timeout_seconds,
        }
        if self.result_selector is not None:
            state["ResultSelector"] = self.result_selector
        state["ResultPath"] = self.result_path
        if self.drop_output:
            state["OutputPath"] = None
        platform = (
            PLATFORM_RETRIERS if self.catch_next is not None else (*PLATFORM_RETRIERS[:-1], UNCAUGHT_RUNNER_RETRIER)
        )
        state["Retry"] = [*platform, *(r.to_asl() for r in self.retriers)]
        if self.catch_next is not None:
            state["Catch"] = _catch_all(self.catch_next)
        return _linked(state, self.next)


@dataclass(frozen=True, slots=True)
class ServiceTask:
    """A Task state calling an AWS service through a Step Functions integration (no Lambda of ours):
    its result (selected) at `result_path`, every error caught into `catch_next` at `error_path`."""

    resource: str
    parameters: dict[str, Any]
    next: str
    catch_next: str
    result_path: str | None
    error_path: str
    result_selector: dict[str, str] | None = None
    timeout_seconds: int | None = None
    resume_errors: tuple[str, ...] = ()  # errors after which the run goes on to `next` all the same
    retry_all: Retrier | None = None  # made again on any error (a describe call: not a start)

    kind = "Call"

    def to_asl(self) -> State:
        state: State = {"Type": "Task", "Resource": self.resource, "Parameters": self.parameters}
        if self.timeout_seconds is not None:
            state["TimeoutSeconds"] = self.timeout_seconds
        if self.result_selector:
            state["ResultSelector"] = self.result_selector
        state["ResultPath"] = self.result_path
        if self.retry_all is not None:
            state["Retry"] = [self.retry_all.to_asl()]
        resumed = [{"ErrorEquals": list(self.resume_errors), "ResultPath": self.result_path, "Next": self.next}]
        caught = [{"ErrorEquals": [STATES_ALL], "ResultPath": self.error_path, "Next": self.catch_next}]
        state["Catch"] = (resumed if self.resume_errors else []) + caught
        return _linked(state, self.next)


@dataclass(frozen=True, slots=True)
class PassState:
    """A Pass state: sets `parameters` (templated), or puts `result` at `result_path`, or does nothing."""

    next: str | None
    parameters: dict[str, Any] | None = None
    result: Any = None
    result_path: str | None = None
    drop_output: bool = False  # a child execution's last state: its output is {}

    kind = "Pass"

    def to_asl(self) -> State:
        state: State = {"Type": "Pass"}
        if self.parameters is not None:
            state["Parameters"] = self.parameters
        if self.result is not None:
            state["Result"] = self.result
            state["ResultPath"] = self.result_path
        elif self.parameters is not None and self.result_path is not None:
            state["ResultPath"] = self.result_path
        if self.drop_output:
            state["OutputPath"] = None
        return _linked(state, self.next)


@dataclass(frozen=True, slots=True)
class ChoiceRule:
    variable: str
    next: str
    string_equals: str | None = None
    is_present: bool | None = None
    boolean_equals: bool | None = None
    is_null: bool | None = None

    def to_asl(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"Variable": self.variable}
        if self.string_equals is not None:
            rule["StringEquals"] = self.string_equals
        if self.boolean_equals is not None:
            rule["BooleanEquals"] = self.boolean_equals
        if self.is_present is not None:
            rule["IsPresent"] = self.is_present
        if self.is_null is not None:
            rule["IsNull"] = self.is_null
        rule["Next"] = self.next
        return rule


@dataclass(frozen=True, slots=True)
class PresentAndTrueRule:
    """Goes to `next` when `variable` is present and true (or `value`); an absent variable is not an error."""

    variable: str
    next: str
    value: bool = True

    def to_asl(self) -> dict[str, Any]:
        tests = [
            {"Variable": self.variable, "IsPresent": True},
            {"Variable": self.variable, "BooleanEquals": self.value},
        ]
        return {"And": tests, "Next": self.next}


@dataclass(frozen=True, slots=True)
class WhileRule:
    """Goes to `next` while `variable` is present and one of `values`, and `count` is below `limit`."""

    variable: str
    values: tuple[str, ...]
    count: str
    limit: int
    next: str

    def to_asl(self) -> dict[str, Any]:
        tests = [
            *_present_and_one_of(self.variable, self.values),
            {"Variable": self.count, "NumericLessThan": self.limit},
        ]
        return {"And": tests, "Next": self.next}


@dataclass(frozen=True, slots=True)
class NextItemRule:
    """Goes to `next` when `variable` is one of `values` (the item ended well) and `index` is not
    `last` (more of the list to wait for)."""

    variable: str
    values: tuple[str, ...]
    index: str
    last: str
    next: str

    def to_asl(self) -> dict[str, Any]:
        more = {"Not": {"Variable": self.index, "NumericEqualsPath": self.last}}
        return {"And": [*_present_and_one_of(self.variable, self.values), more], "Next": self.next}


def _present_and_one_of(variable: str, values: tuple[str, ...]) -> list[dict[str, Any]]:
    """Choice tests: `variable` is present, and equals one of `values`."""
    matches = [{"Variable": variable, "StringEquals": value} for value in values]
    return [{"Variable": variable, "IsPresent": True}, matches[0] if len(matches) == 1 else {"Or": matches}]


@dataclass(frozen=True, slots=True)
class UntilRule:
    """Goes to `next` until `variable` is present and equals `value` (with `value_is_path`, the value
    at that path; None: until it is present), while `count` is below `limit`."""

    variable: str
    value: str | None
    value_is_path: bool
    count: str
    limit: int
    next: str

    def to_asl(self) -> dict[str, Any]:
        present = {"Variable": self.variable, "IsPresent": True}
        done: dict[str, Any] = present
        if self.value is not None:
            equals = {
                "Variable": self.variable,
                "StringEqualsPath" if self.value_is_path else "StringEquals": self.value,
            }
            done = {"And": [present, equals]}
        return {"And": [{"Not": done}, {"Variable": self.count, "NumericLessThan": self.limit}], "Next": self.next}


@dataclass(frozen=True, slots=True)
class ChoiceState:
    choices: tuple[ChoiceRule | PresentAndTrueRule | WhileRule | UntilRule, ...]
    default: str

    kind = "Choice"

    def to_asl(self) -> State:
        return {"Type": "Choice", "Choices": [c.to_asl() for c in self.choices], "Default": self.default}


@dataclass(frozen=True, slots=True)
class WaitState:
    """A Wait state: as many seconds as `seconds_path` says (no compute is held while it waits)."""

    seconds_path: str
    next: str

    kind = "Sleep"

    def to_asl(self) -> State:
        return {"Type": "Wait", "SecondsPath": self.seconds_path, "Next": self.next}


@dataclass(frozen=True, slots=True)
class PauseState:
    """A Wait state of a fixed number of seconds."""

    seconds: int
    next: str

    kind = "Sleep"

    def to_asl(self) -> State:
        return {"Type": "Wait", "Seconds": self.seconds, "Next": self.next}


@dataclass(frozen=True, slots=True)
class FailState:
    error: str
    cause_path: str

    kind = "Fail"

    def to_asl(self) -> State:
        return {"Type": "Fail", "Error": self.error, "CausePath": self.cause_path}


@dataclass(frozen=True, slots=True)
class SucceedState:
    kind = "Succeed"

    def to_asl(self) -> State:
        return {"Type": "Succeed"}


@dataclass(frozen=True, slots=True)
class Branch:
    """A state-machine fragment: a Parallel branch or a Map item processor."""

    start_at: str
    states: dict[str, State]
    processor_config: dict[str, str] | None = None  # a Map's item processor: its mode (and child type)

    def to_asl(self) -> dict[str, Any]:
        fragment: dict[str, Any] = {"ProcessorConfig": self.processor_config} if self.processor_config else {}
        fragment["StartAt"] = self.start_at
        fragment["States"] = self.states
        return fragment


@dataclass(frozen=True, slots=True)
class ParallelState:
    """A Parallel state (its output dropped); with `retriers` and `catch_next`, one whose single
    branch is a task's try: the branch runs again for each retry, and a last failure is caught."""

    branches: tuple[Branch, ...]
    next: str | None
    retriers: tuple[Retrier, ...] = ()
    catch_next: str | None = None

    kind = "Parallel"

    def to_asl(self) -> State:
        state: State = {"Type": "Parallel", "Branches": [b.to_asl() for b in self.branches], "ResultPath": None}
        if self.retriers:
            state["Retry"] = [r.to_asl() for r in self.retriers]
        if self.catch_next is not None:
            state["Catch"] = _catch_all(self.catch_next)
        return _linked(state, self.next)


@dataclass(frozen=True, slots=True)
class InlineMapState:
    """An inline Map over `items_path`, each item processed by `processor` (whose output is dropped)."""

    items_path: str
    item_selector: dict[str, str]
    processor: Branch
    next: str | None
    max_concurrency: int = 0

    kind = "Map"

    def to_asl(self) -> State:
        state: State = {
            "Type": "Map",
            "ItemsPath": self.items_path,
            "ItemSelector": self.item_selector,
            "MaxConcurrency": self.max_concurrency,
            "ItemProcessor": self.processor.to_asl(),
            "ResultPath": None,
        }
        return _linked(state, self.next)


INLINE_PROCESSOR = {"Mode": "INLINE"}
# Standard children: a try may take 15 minutes and more with retries (Express stops at 5), and Step
# Functions starts a Standard child once per item (Express children are at-least-once).
DISTRIBUTED_PROCESSOR = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


@dataclass(frozen=True, slots=True)
class DistributedMapState:
    """A Distributed Map: each item runs in a child execution (`processor`, with its own history),
    the items read from S3 by `item_reader` or taken from the state data at `items_path`; no
    child's failure fails the Map; the children's outputs are dropped, or put at `result_path`.
    Whatever fails the Map itself (its items cannot be read) is caught into `catch_next`."""

    item_reader: dict[str, Any] | None
    item_selector: dict[str, str]
    processor: Branch
    next: str | None
    max_concurrency: int
    catch_next: str
    items_path: str | None = None
    result_path: str | None = None
    result_selector: dict[str, str] | None = None

    kind = "Map"

    def to_asl(self) -> State:
        state: State = {"Type": "Map"}
        if self.item_reader is not None:
            state["ItemReader"] = self.item_reader
        else:
            state["ItemsPath"] = self.items_path
        state |= {
            "ItemSelector": self.item_selector,
            "MaxConcurrency": self.max_concurrency,
            "ToleratedFailurePercentage": 100.0,  # a float: moto's ASL parser refuses the integer 100
            "ItemProcessor": self.processor.to_asl(),
        }
        if self.result_selector is not None:
            state["ResultSelector"] = self.result_selector
        state |= {"ResultPath": self.result_path, "Catch": _catch_all(self.catch_next)}
        return _linked(state, self.next)


def _catch_all(next_name: str) -> list[dict[str, Any]]:
    """Every error caught, with {Error, Cause} put beside the state data, on to `next_name`."""
    return [{"ErrorEquals": [STATES_ALL], "ResultPath": CAUGHT_ERROR_PATH, "Next": next_name}]


def _linked(state: State, next_name: str | None) -> State:
    if next_name is None:
        state["End"] = True
    else:
        state["Next"] = next_name
    return state
