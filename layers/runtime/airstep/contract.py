"""The contract between a compiled state machine and the code it calls, written once.

The compiler (`airstep_compiler`) writes these payloads, state data, helper-state names and error
names into every definition; the task runner, the run starter, the run tracker and the local engine
read them. Both sides import this module, so no name of the contract is spelled anywhere else.

State data, from the first state on (`{"dag": DagRef, "run": DagRun input}`; in a Map item processor
also `"item"`, after a caught error also `"error"`), is passed whole to the runner as `ctx`::

    {"task_id", "ctx", "signal"?}                       run the next try of a task
    {"action": "gate", "task_id", "wait_for", "token", "ctx"}   hold a task until its gate opens
    {"action": "fail", "task_id", "signal", "ctx"}      record a try the runner could not report
    {"action": "finalize", "ctx"}                       decide the run's state from its leaves
    {"action": "end_call", "task_id", "ctx"}            end a service integration's try (ctx: its call's result)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from airstep.states import RunState, RunType, TaskState

# ------------------------------------------------------------------------------------------------
# Payloads: what a Lambda state sends the task runner


class Action(StrEnum):
    RUN = "run"
    GATE = "gate"
    FAIL = "fail"
    FINALIZE = "finalize"
    EXPAND = "expand"  # decide a mapped task and count its instances
    SIGNAL = "signal"  # a mapped task's instances have all ended: tell its gated downstream tasks
    TIME_OUT = "time_out"  # the run's dagrun_timeout passed: end what is unfinished, run the callback
    ACQUIRE = "acquire"  # take a pooled task's slots, or wait for them (a task token; nothing runs)
    ARM = "arm"  # the run's first step: arm its deadline alerts (a one-off schedule each)
    DECIDE_DEADLINE = "decide_deadline"  # a deadline's schedule fired: a miss, unless the run succeeded by then
    END_CALL = "end_call"  # a service integration's call has ended: end the try with its result or error


ACTION = "action"
TASK_ID = "task_id"
CTX = "ctx"  # the whole state data
SIGNAL = "signal"  # gated downstream tasks to tell when this task has ended
WAIT_FOR = "wait_for"  # the upstream tasks a gate waits for
TOKEN = "token"  # the gate's task token
MAP_INDEX = "map_index"
MAPPED = "mapped"  # state data: the expand step's {indexes, reader}
LAP_POKES = "lap_pokes"  # a sensor looping in child executions: the pokes of a try in one child
ALERT = "alert"  # a deadline's: the index of its alert among the DAG's
DISTRIBUTED = "distributed"  # an expand step's: its definition may run the instances as child executions
GUARDS = "guards"  # {guard: head task id}: the guards in front of paths a skipping task may skip

# Keys of the state data.
DAG = "dag"
RUN = "run"
EXECUTION = "execution"  # the execution's ARN
ITEM = "item"
ERROR = "error"
RESULT = "result"
MAP_ITEMS = "items"

_TASK_TOKEN_PATH = "$$.Task.Token"


def _ref(key: str) -> str:
    """A Parameters key whose value is a JSONPath."""
    return f"{key}.$"


def _path(*keys: str) -> str:
    return ".".join(("$", *keys))


_CTX = {_ref(CTX): "$"}


def run_payload(
    task_id: str | None,
    signal: Sequence[str] = (),
    guards: Mapping[str, str] | None = None,
    lap_pokes: int | None = None,
) -> dict[str, Any]:
    """A task's run state payload; `task_id=None` names the task of the Map item being processed."""
    if task_id is None:
        return {_ref(TASK_ID): _path(ITEM, TASK_ID), _ref(SIGNAL): _path(ITEM, SIGNAL), **_CTX}
    payload: dict[str, Any] = {TASK_ID: task_id, **_CTX}
    if signal:
        payload[SIGNAL] = list(signal)
    if guards:
        payload[GUARDS] = dict(guards)
    if lap_pokes is not None:
        payload[LAP_POKES] = lap_pokes
    return payload


def acquire_payload(task_id: str | None) -> dict[str, Any]:
    """A pooled task's acquire state (a `waitForTaskToken` call); `task_id=None`: a mapped instance's
    (its task and map index from the Map item)."""
    if task_id is None:
        fields: dict[str, Any] = {_ref(TASK_ID): _path(ITEM, TASK_ID), _ref(MAP_INDEX): _path(ITEM, MAP_INDEX)}
    else:
        fields = {TASK_ID: task_id}
    return {ACTION: Action.ACQUIRE, **fields, _ref(TOKEN): _TASK_TOKEN_PATH, **_CTX}


def expand_payload(task_id: str) -> dict[str, Any]:
    """`distributed`: the definition has a Distributed Map for more than 40 instances (one compiled
    before it, without the key, had only the inline Map, which then gets every index)."""
    return {ACTION: Action.EXPAND, TASK_ID: task_id, **_CTX, DISTRIBUTED: True}


def signal_payload(task_id: str, signal: Sequence[str]) -> dict[str, Any]:
    return {ACTION: Action.SIGNAL, TASK_ID: task_id, SIGNAL: list(signal), **_CTX}


def end_call_payload(task_id: str, signal: Sequence[str] = ()) -> dict[str, Any]:
    """A service integration's record state payload: its call's result or error is in the state data."""
    return {ACTION: Action.END_CALL, **run_payload(task_id, signal)}


# A service integration's try, in the state data of its branch (one key, `begun`, so that the call's
# result replaces the rendered parameters rather than sit beside them): the run step's outcome
# ({"outcome": {state, call: {rendered parameters}}}: a try began when its state is running), then the
# call's whole response ({"result": ...}) or the {Error, Cause} it raised.
BEGUN = "begun"
OUTCOME = "outcome"
CALL = "call"
CALL_RESULT = "result"
BEGUN_SELECTOR = {_ref(OUTCOME): _path("Payload")}


def call_selector(*keys: str) -> dict[str, Any]:
    """A call state's ResultSelector: its whole response, or only the keys its operator returns and
    checks (a waited-for execution's response holds its input and output too); a dotted key
    (`QueryExecution.QueryExecutionId`) keeps its nesting."""
    if not keys:
        return {_ref(CALL_RESULT): "$"}
    selected: dict[str, Any] = {}
    for key in keys:
        *outer, last = key.split(".")
        inner = selected
        for part in outer:
            inner = inner.setdefault(part, {})
        inner[_ref(last)] = _path(*key.split("."))
    return {CALL_RESULT: selected}


BEGUN_PATH = _path(BEGUN)
# A call waited for by describe calls (Poll) keeps the run step's outcome beside its result, for the
# describe calls' rendered parameters, and counts them.
CALL_RESULT_PATH = _path(BEGUN, CALL_RESULT)
POLLS = "polls"
POLLS_PATH = _path(BEGUN, POLLS)
POLL_COUNT = "n"
POLL_COUNT_PATH = _path(BEGUN, POLLS, POLL_COUNT)
FIRST_POLL = {POLL_COUNT: 0}
NEXT_POLL = {_ref(POLL_COUNT): f"States.MathAdd({POLL_COUNT_PATH}, 1)"}
# Describe calls that wait for each of a list in turn (EMR's steps): which one, the last's index, and
# where their answers go (beside the start's answer, which holds the list)
POLL_INDEX, POLL_LAST = "i", "last"
POLL_INDEX_PATH, POLL_LAST_PATH = _path(BEGUN, POLLS, POLL_INDEX), _path(BEGUN, POLLS, POLL_LAST)
DESCRIBED = "described"
DESCRIBED_PATH = _path(BEGUN, CALL_RESULT, DESCRIBED)


def first_poll_of_each(items: str) -> dict[str, Any]:
    """The describe calls' count, at the first of the list at `items` (a path in the start's answer)."""
    listed = described_path(items)
    return {POLL_COUNT: 0, POLL_INDEX: 0, _ref(POLL_LAST): f"States.MathAdd(States.ArrayLength({listed}), -1)"}


def next_poll_of_each(advance: bool) -> dict[str, Any]:
    """The describe calls' count one more (`advance`: the same count, at the next of the list)."""
    count = f"States.MathAdd({POLL_COUNT_PATH}, 1)" if not advance else POLL_COUNT_PATH
    index = f"States.MathAdd({POLL_INDEX_PATH}, 1)" if advance else POLL_INDEX_PATH
    return {_ref(POLL_COUNT): count, _ref(POLL_INDEX): index, _ref(POLL_LAST): POLL_LAST_PATH}


def each_parameter(name: str, items: str) -> tuple[str, str]:
    """A describe call's Parameters entry for the list's current item."""
    return _ref(name), f"States.ArrayGetItem({described_path(items)}, {POLL_INDEX_PATH})"


def described_path(dotted: str) -> str:
    """Where a value of the last describe call's response is in the state data."""
    return _path(BEGUN, CALL_RESULT, *dotted.split("."))


def answered_parameter(entry: str) -> tuple[str, str]:
    """A describe call's Parameters entry for a parameter read from the last answer: `Id`, or
    `JobRunId=JobRun.JobRunId` (the parameter's name, then where the answer has it)."""
    name, _, path = entry.partition("=")
    return _ref(name), described_path(path or name)


def nested_answer(key: str) -> dict[str, Any]:
    """A start call's ResultSelector that keeps its whole answer under `key`; or, `Cluster.Id=JobFlowId`,
    one value of it where the describe call answers it."""
    target, _, source = key.partition("=")
    if not source:
        return {_ref(key): "$"}
    *outer, last = target.split(".")
    selector: dict[str, Any] = {_ref(last): _path(*source.split("."))}
    for part in reversed(outer):
        selector = {part: selector}
    return selector


def rendered_parameter(name: str, source: str | None = None) -> tuple[str, str]:
    """A call state's Parameters entry for a parameter the run step rendered (as `source`, if given)."""
    return _ref(name), _path(BEGUN, OUTCOME, CALL, source or name)


def mapped_run_payload() -> dict[str, Any]:
    """A mapped instance's run state payload (in the Map over the expand step's indexes)."""
    return {_ref(TASK_ID): _path(ITEM, TASK_ID), _ref(MAP_INDEX): _path(ITEM, MAP_INDEX), **_CTX}


def indexed_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload of a state inside a mapped task group's item processor: for the item's map index."""
    return {**payload, _ref(MAP_INDEX): _path(ITEM, MAP_INDEX)}


def mapped_item_selector(task_id: str) -> dict[str, Any]:
    return {
        ITEM: {TASK_ID: task_id, _ref(MAP_INDEX): "$$.Map.Item.Value"},
        _ref(DAG): _path(DAG),
        _ref(RUN): _path(RUN),
        _ref(EXECUTION): _path(EXECUTION),
    }


MAPPED_INDEXES = "indexes"  # the instances an inline Map runs ([] when a Distributed Map runs them)
MAPPED_READER = "reader"  # {bucket, key} of the S3 object listing the instances, or null: run inline
MAPPED_INDEXES_PATH = _path(MAPPED, MAPPED_INDEXES)
MAPPED_READER_PATH = _path(MAPPED, MAPPED_READER)
MAPPED_PATH = _path(MAPPED)
EXPAND_SELECTOR = {
    _ref(MAPPED_INDEXES): _path("Payload", MAPPED_INDEXES),
    _ref(MAPPED_READER): _path("Payload", MAPPED_READER),
}
# At most this many instances run in an inline Map (its 40-way concurrency: one wave); more run as
# a Distributed Map's child executions, each with its own history (docs/design.md, "Dynamic task mapping").
INLINE_MAP_MAX_ITEMS = 40


_READER_BUCKET, _READER_KEY = "bucket", "key"


def expand_answer(length: int, reader: tuple[str, str] | None = None) -> dict[str, Any]:
    """What the expand step returns: `length` instances, run inline, or (`reader`: the bucket and key
    of the JSON array of their indexes) by a Distributed Map."""
    if reader is None:
        return {MAPPED_INDEXES: list(range(length)), MAPPED_READER: None}
    return {MAPPED_INDEXES: [], MAPPED_READER: {_READER_BUCKET: reader[0], _READER_KEY: reader[1]}}


def expanded(answer: Mapping[str, Any]) -> bool:
    """Whether an expand step's answer runs instances (else the task was settled as a whole)."""
    return bool(answer.get(MAPPED_INDEXES) or answer.get(MAPPED_READER))


def mapped_item_reader() -> dict[str, Any]:
    """A Distributed Map's ItemReader: the JSON array of indexes the expand step wrote to S3."""
    return {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {
            _ref("Bucket"): _path(MAPPED, MAPPED_READER, _READER_BUCKET),
            _ref("Key"): _path(MAPPED, MAPPED_READER, _READER_KEY),
        },
    }


def gate_payload(task_id: str | None, wait_for: Sequence[str] = ()) -> dict[str, Any]:
    """A gate state's payload (a `waitForTaskToken` call); `task_id=None`: the Map item's task."""
    if task_id is None:
        fields: dict[str, Any] = {_ref(TASK_ID): _path(ITEM, TASK_ID), _ref(WAIT_FOR): _path(ITEM, WAIT_FOR)}
    else:
        fields = {TASK_ID: task_id, WAIT_FOR: list(wait_for)}
    return {ACTION: Action.GATE, **fields, _ref(TOKEN): _TASK_TOKEN_PATH, **_CTX}


def fail_payload(task_id: str | None, signal: Sequence[str] = ()) -> dict[str, Any]:
    """A failure-recording state's payload; `task_id=None`: the Map item's task."""
    if task_id is None:
        return {ACTION: Action.FAIL, **run_payload(None)}
    return {ACTION: Action.FAIL, TASK_ID: task_id, SIGNAL: list(signal), **_CTX}


def mapped_fail_payload() -> dict[str, Any]:
    """A mapped instance's failure-recording payload (its task and map index from the Map's item)."""
    return {ACTION: Action.FAIL, **mapped_run_payload()}


def finalize_payload() -> dict[str, Any]:
    return {ACTION: Action.FINALIZE, **_CTX}


def arm_payload() -> dict[str, Any]:
    return {ACTION: Action.ARM, **_CTX}


def deadline_event(dag: DagRef, run: DagRun, execution: str | None, alert: int) -> dict[str, Any]:
    """What a deadline's schedule sends the task runner when the deadline comes: the run (as this
    execution runs it) and which of its DAG's alerts."""
    ctx = {DAG: dag.to_dict(), RUN: run.to_input(), EXECUTION: execution}
    return {ACTION: Action.DECIDE_DEADLINE.value, CTX: ctx, ALERT: alert}


def time_out_event(
    definition: dict[str, Any], execution_arn: str, run_input: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The task-runner function of a timed-out execution's state machine, and the event that ends its
    run (read from the definition: the DAG it ran and the function its finalize step calls)."""
    states = definition["States"]
    dag = states[DAGRUN_START]["Parameters"][DAG]
    function = states[DAGRUN_FINALIZE]["Parameters"]["FunctionName"]
    return function, {ACTION: Action.TIME_OUT.value, CTX: {DAG: dag, RUN: run_input, EXECUTION: execution_arn}}


def map_item(task_id: str, signal: Sequence[str], wait_for: Sequence[str]) -> dict[str, Any]:
    """One item of a task Map: the task, the gates it signals and, if it is gated, what it waits for."""
    item: dict[str, Any] = {TASK_ID: task_id, SIGNAL: list(signal)}
    if wait_for:
        item[WAIT_FOR] = list(wait_for)
    return item


MAP_ITEMS_PATH = _path(MAP_ITEMS)
MAP_ITEM_GATED_PATH = _path(ITEM, WAIT_FOR)
MAP_ITEM_SELECTOR = {
    _ref(ITEM): "$$.Map.Item.Value",
    _ref(DAG): _path(DAG),
    _ref(RUN): _path(RUN),
    _ref(EXECUTION): _path(EXECUTION),
}
CAUGHT_ERROR_PATH = _path(ERROR)  # where a task state's Catch puts {Error, Cause}
OUTCOME_PATH = _path(RESULT)  # where the finalize step's outcome goes


def initial_state_data(dag: DagRef) -> dict[str, Any]:
    """Parameters of the first state: the DAG's identity and the execution's beside the execution input."""
    return {DAG: dag.to_dict(), _ref(RUN): "$", _ref(EXECUTION): "$$.Execution.Id"}


@dataclass(frozen=True, slots=True)
class DagRef:
    """Which DAG a run executes: the file (local path or s3:// URI) at exactly this version, and its
    graph model (an s3:// URI), which the task runner reads instead of running the file."""

    dag_id: str
    file: str
    version: str
    model: str

    def to_dict(self) -> dict[str, str]:
        return {"dag_id": self.dag_id, "file": self.file, "version": self.version, "model": self.model}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DagRef:
        return cls(data["dag_id"], data["file"], data["version"], data["model"])


@dataclass(frozen=True, slots=True)
class Payload:
    """A task-runner invocation, as the runner reads it."""

    action: Action
    dag: DagRef
    run: DagRun
    task_id: str | None = None
    signal: tuple[str, ...] = ()
    wait_for: tuple[str, ...] = ()
    token: str | None = None
    caught: dict[str, Any] = field(default_factory=dict)  # the Catch's {Error, Cause}, for "fail"
    execution: str | None = None
    guards: dict[str, str] = field(default_factory=dict)
    map_index: int = -1
    lap_pokes: int | None = None
    distributed: bool = False
    alert: int = -1  # a deadline's: which of the DAG's deadline alerts
    call_result: Any = None  # a record step's: the call's selected result
    call_error: dict[str, Any] | None = None  # ... or its caught {Error, Cause}
    call_parameters: dict[str, Any] = field(default_factory=dict)  # ... and the parameters its run step rendered

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Payload:
        ctx = event[CTX]
        return cls(
            action=Action(event.get(ACTION, Action.RUN)),
            dag=DagRef.from_dict(ctx[DAG]),
            run=DagRun.from_input(ctx[RUN]),
            task_id=event.get(TASK_ID),
            signal=tuple(event.get(SIGNAL) or ()),
            wait_for=tuple(event.get(WAIT_FOR) or ()),
            token=event.get(TOKEN),
            caught=ctx.get(ERROR) or {},
            execution=ctx.get(EXECUTION),
            guards=dict(event.get(GUARDS) or {}),
            map_index=int(event.get(MAP_INDEX, -1)),
            lap_pokes=event.get(LAP_POKES),
            distributed=bool(event.get(DISTRIBUTED, False)),
            alert=int(event.get(ALERT, -1)),
            **_call_ended(ctx.get(BEGUN)),
        )


def _call_ended(begun: Any) -> dict[str, Any]:
    """A record step's view of its call: the response, or the error it raised (caught in its place)."""
    if not isinstance(begun, dict):
        return {}
    if CALL_RESULT in begun:
        outcome = begun.get(OUTCOME)  # (kept beside the result of a call waited for by describe calls)
        rendered = outcome.get(CALL) if isinstance(outcome, dict) else None
        return {"call_result": begun[CALL_RESULT], "call_parameters": rendered if isinstance(rendered, dict) else {}}
    if OUTCOME in begun:  # (a run step's state data, not a record step's)
        return {}
    return {"call_error": {"Error": begun.get("Error"), "Cause": begun.get("Cause")}}


# ------------------------------------------------------------------------------------------------
# Outcomes: what the runner answers (the definition reads the finalize outcome's state and cause)

OUTCOME_STATE = "state"
BEGUN_STATE_PATH = _path(BEGUN, OUTCOME, OUTCOME_STATE)  # a service integration's run step: did a try begin
OUTCOME_CAUSE = "cause"
OUTCOME_STATE_SELECTOR = {_ref(OUTCOME_STATE): _path("Payload", OUTCOME_STATE)}
OUTCOME_SELECTOR = {**OUTCOME_STATE_SELECTOR, _ref(OUTCOME_CAUSE): _path("Payload", OUTCOME_CAUSE)}
RUN_STATE_PATH = _path(RESULT, OUTCOME_STATE)
BYPASS = "bypass"
POKE = "poke"  # state data: a sensor's last {done, wait, lap}
POKE_DONE, POKE_WAIT, POKE_LAP = "done", "wait", "lap"  # lap: the child execution's pokes are spent
POKE_PATH = _path(POKE)
POKE_DONE_PATH = _path(POKE, POKE_DONE)
POKE_WAIT_PATH = _path(POKE, POKE_WAIT)
POKE_LAP_PATH = _path(POKE, POKE_LAP)
POKE_SELECTOR = {_ref(POKE_DONE): _path("Payload", POKE, POKE_DONE), _ref(POKE_WAIT): _path("Payload", POKE, POKE_WAIT)}
LAP_POKE_SELECTOR = {**POKE_SELECTOR, _ref(POKE_LAP): _path("Payload", POKE, POKE_LAP)}
LAPS = "laps"  # state data: the one item of a sensor's next child execution
LAPS_PATH = _path(LAPS)
LAP = "lap"  # state data: {child: {done}}, the output of a sensor's last child execution
LAP_CHILD = "child"
LAP_PATH = _path(LAP)
LAP_DONE_PATH = _path(LAP, LAP_CHILD, POKE_DONE)
# The Distributed Map's output is the list of its one child's output. (A Choice on "$.lap[0].done"
# is valid ASL, but moto's interpreter reads a list there: the selector takes the item out.)
LAP_SELECTOR = {_ref(LAP_CHILD): "$[0]"}


def bypass_selector(guards: Sequence[str]) -> dict[str, str]:
    """A skipping task's ResultSelector: whether each of its guards bypasses its path."""
    return {_ref(guard): _path("Payload", BYPASS, guard) for guard in guards}


def bypass_path(owner: int) -> str:
    """Where the skipping task numbered `owner` puts its guards' verdicts in the state data."""
    return _path(f"{BYPASS}{owner}")


def bypass_variable(owner: int, guard: str) -> str:
    return _path(f"{BYPASS}{owner}", guard)


RUN_CAUSE_PATH = _path(RESULT, OUTCOME_CAUSE)


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How an invocation left a task instance (`try_number` 0: it never ran), and, for a task with
    guards, which of the paths behind them are skipped for certain (`bypass`)."""

    task_id: str
    state: TaskState
    try_number: int = 0
    bypass: dict[str, bool] | None = None
    map_index: int = -1
    poke: dict[str, Any] | None = None  # a sensor's: {done, wait (seconds until the next poke)}
    call: dict[str, Any] | None = None  # a service integration's try began: its rendered parameters

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {TASK_ID: self.task_id, OUTCOME_STATE: self.state.value, "try_number": self.try_number}
        if self.bypass is not None:
            data[BYPASS] = self.bypass
        if self.map_index >= 0:
            data[MAP_INDEX] = self.map_index
        if self.poke is not None:
            data[POKE] = self.poke
        if self.call is not None:
            data[CALL] = self.call
        return data

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskOutcome | None:
        """The outcome in an invocation's result, or None if the result is not one (a gate's)."""
        if not isinstance(data, dict) or OUTCOME_STATE not in data:
            return None
        return cls(
            data[TASK_ID],
            TaskState(data[OUTCOME_STATE]),
            data.get("try_number", 0),
            data.get(BYPASS),
            data.get(MAP_INDEX, -1),
            data.get(POKE),
            data.get(CALL),
        )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """The finalize step's verdict on a run."""

    state: RunState
    cause: str
    failed_tasks: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {OUTCOME_STATE: self.state.value, OUTCOME_CAUSE: self.cause, "failed_tasks": self.failed_tasks}


# A try's XComs travel from the executor to the task instance record and on to downstream tries as
# one JSON object {key: value}; a task's return value is the XCom under Airflow's key.
XCOM_RETURN_KEY = "return_value"


# ------------------------------------------------------------------------------------------------
# Errors: the runner raises these classes; Step Functions names each error after its class, and the
# compiled Retry and Catch match those names.


class AirstepTaskFailed(Exception):  # noqa: N818 - the name is the Step Functions error name
    """A task try failed and the task may be retried."""


class AirstepTaskFailedNoRetry(Exception):  # noqa: N818
    """A task failed in a way that must not be retried (AirflowFailException)."""


class AirstepRunnerError(Exception):
    """The runner itself failed (the store, a DAG file that would not load): retried without using the
    task's retries. The message never carries what user code raised."""


TASK_FAILED = AirstepTaskFailed.__name__
TASK_FAILED_NO_RETRY = AirstepTaskFailedNoRetry.__name__
RUNNER_ERROR = AirstepRunnerError.__name__
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"
DAG_RUN_FAILED = "DagRunFailed"  # the error of a failed run's execution (what alarms count)
POOL_UNAVAILABLE = "PoolUnavailable"  # a pooled task's pool is missing, or smaller than its pool_slots
STATES_ALL = "States.ALL"
STATES_TIMEOUT = "States.Timeout"  # a try ran past its TimeoutSeconds (execution_timeout)
LAMBDA_UNKNOWN = "Lambda.Unknown"  # the Lambda crashed or ran out of memory
# A try that failed, timed out or crashed uses one of the task's retries.
RETRYABLE_ERRORS = (TASK_FAILED, STATES_TIMEOUT, LAMBDA_UNKNOWN)

# ------------------------------------------------------------------------------------------------
# Helper-state names. Task ids cannot contain "@" (airstep.sdk.dag.KEY_PATTERN), so a helper state
# never collides with a task's state, which is named after the task.

HELPER_MARK = "@"
WAIT_SUFFIX = "@wait"
POOL_SUFFIX = "@pool"  # a pooled task's acquire state
FAILED_SUFFIX = "@failed"
END_SUFFIX = "@end"
BEGIN_SUFFIX = "@begin"  # a service integration's run step (its try begins)
BEGUN_SUFFIX = "@begun"  # Choice: call, unless the run step settled the task without a try
CALL_SUFFIX = "@call"  # the service integration's Task state
RECORD_SUFFIX = "@record"  # its try ends with the call's result or error
POLLS_SUFFIX = "@polls"  # a call waited for by describe calls: none made yet
DESCRIBE_SUFFIX = "@describe"  # the describe call
COUNT_SUFFIX = "@count"  # one more made
DESCRIBED_SUFFIX = "@described"  # Choice: still running (and checks left): pause, then describe again
PAUSE_SUFFIX = "@pause"
LONGER_PAUSE_SUFFIX = "@pause_longer"  # ... once the checks at the operator's interval are spent (a long wait)
NEXT_ITEM_SUFFIX = "@next_item"  # ... the describe calls move on to the next of a list (each of EMR's steps)
HELPER_SUFFIXES = (
    WAIT_SUFFIX,
    FAILED_SUFFIX,
    FAILED_SUFFIX + END_SUFFIX,
    BEGIN_SUFFIX,
    BEGUN_SUFFIX + END_SUFFIX,
    CALL_SUFFIX,
    RECORD_SUFFIX,
    POLLS_SUFFIX,
    DESCRIBE_SUFFIX,
    COUNT_SUFFIX,
    DESCRIBED_SUFFIX,
    PAUSE_SUFFIX,
    LONGER_PAUSE_SUFFIX,
)
DAGRUN_START = "dagrun@start"
DAGRUN_DEADLINES = "dagrun@deadlines"  # a DAG with deadline alerts: its runs arm them first
DAGRUN_FINALIZE = "dagrun@finalize"
DAGRUN_CHECK = "dagrun@check"
DAGRUN_FAILED = "dagrun@failed"
DAGRUN_SUCCEEDED = "dagrun@succeeded"


def wait_state(name: str) -> str:
    return name + WAIT_SUFFIX


def failed_state(name: str) -> str:
    return name + FAILED_SUFFIX


def end_state(name: str) -> str:
    """Where a branch-final state goes when it catches an error (a branch's last state cannot say Next)."""
    return name + END_SUFFIX


def parallel_state(number: int) -> str:
    return f"parallel@{number}"


EXPAND_SUFFIX = "@expand"
MAP_SUFFIX = "@map"
INSTANCE_SUFFIX = "@i"
SIGNAL_SUFFIX = "@signal"
FANOUT_SUFFIX = "@fanout"  # Choice: inline Map or Distributed Map, from the expand step's answer
DISTRIBUTED_MAP_SUFFIX = "@dmap"
CHILD_SUFFIX = "@d"  # a Distributed Map child's run state
POKED_SUFFIX = "@poked"
SLEEP_SUFFIX = "@sleep"
LAPS_SUFFIX = "@laps"  # Pass: the item of a sensor's next child execution
LAP_SUFFIX = "@lap"  # Distributed Map: a sensor's loop in a child execution
LAPPED_SUFFIX = "@lapped"  # Choice: another child execution while the sensor is not done
NEXT_LAP_SUFFIX = "@again"  # Choice in the child: poke again, or end the child when its pokes are spent
DONE_SUFFIX = "@done"
SPENT_SUFFIX = "@spent"  # a sensor's child execution ends, its pokes spent, the sensor not done


def guard_state(number: int) -> str:
    """The Choice in front of a path that a skipping task may have skipped for certain."""
    return f"bypass@{number}"


def guard_key(number: int) -> str:
    return f"g{number}"


def map_branch(parallel: str, number: int) -> str:
    return f"{parallel}@{number}"


@dataclass(frozen=True, slots=True)
class MapStateNames:
    """The states of one task Map branch (`prefix` from `map_branch`)."""

    prefix: str

    @property
    def items(self) -> str:
        return f"{self.prefix}@items"

    @property
    def tasks(self) -> str:
        return f"{self.prefix}@tasks"

    @property
    def gated(self) -> str:
        return f"{self.prefix}@gated"

    @property
    def wait(self) -> str:
        return wait_state(self.prefix)

    @property
    def run(self) -> str:
        return f"{self.prefix}@run"

    @property
    def failed(self) -> str:
        return failed_state(self.prefix)


# ------------------------------------------------------------------------------------------------
# Records that cross from deploy time to run time


class ScheduleKind(StrEnum):
    """Which of Airflow 3's timetables a DAG's schedule is (see airstep.runtime.scheduling)."""

    CRON_TRIGGER = "cron_trigger"  # CronTriggerTimetable: a cron string or preset
    CRON_INTERVAL = "cron_interval"  # CronDataIntervalTimetable: Airflow 2's cron
    DELTA_TRIGGER = "delta_trigger"  # DeltaTriggerTimetable: a timedelta
    DELTA_INTERVAL = "delta_interval"  # DeltaDataIntervalTimetable: Airflow 2's timedelta
    ONCE = "once"  # "@once"
    ASSETS = "asset_trigger"  # AssetTriggeredTimetable: schedule=[Asset(...)], AssetAll / AssetAny


@dataclass(frozen=True, slots=True)
class Schedule:
    """A DAG's schedule, reduced to one declarative form (built by airstep.sdk.schedule)."""

    kind: ScheduleKind
    cron: str | None = None
    preset: str | None = None
    seconds: float | None = None
    timezone: str | None = None
    interval: float | None = None  # a trigger timetable's data interval, in seconds before the fire time
    assets: dict[str, Any] | None = None  # an asset condition: {"asset", "uri"} | {"all": [...]} | {"any": [...]}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value}
        for name in ("cron", "preset", "seconds", "timezone", "interval", "assets"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        return cls(
            ScheduleKind(data["kind"]),
            data.get("cron"),
            data.get("preset"),
            data.get("seconds"),
            data.get("timezone"),
            data.get("interval"),
            data.get("assets"),
        )

    @property
    def timed(self) -> bool:
        """Whether the schedule fires at times (an EventBridge schedule starts its runs)."""
        return self.kind is not ScheduleKind.ASSETS

    def describe(self) -> str:
        """The schedule as a DAG file writes it: a preset, a cron string, an interval or '@once'."""
        if self.assets is not None:
            return describe_assets(self.assets)
        if self.seconds is not None:
            return f"every {self.seconds:g} s"
        if self.kind is ScheduleKind.ONCE:
            return "@once"
        return self.preset or self.cron or self.kind.value


def describe_assets(condition: dict[str, Any]) -> str:
    """An asset condition as a DAG file would write it."""
    if "asset" in condition:
        return f"Asset({condition['asset']!r})"
    kind, parts = ("AssetAll", condition["all"]) if "all" in condition else ("AssetAny", condition["any"])
    return f"{kind}({', '.join(describe_assets(part) for part in parts)})"


@dataclass(frozen=True, slots=True)
class ScheduleTarget:
    """What a DAG's EventBridge schedule sends the run starter when it fires."""

    dag_id: str
    state_machine_arn: str
    schedule: Schedule
    timezone: str
    scheduled_time: str = "<aws.scheduler.scheduled-time>"  # EventBridge Scheduler fills it in
    max_active_runs: int = 16
    catchup: bool = False

    def to_input(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "state_machine_arn": self.state_machine_arn,
            "schedule": self.schedule.to_dict(),
            "timezone": self.timezone,
            "scheduled_time": self.scheduled_time,
            "max_active_runs": self.max_active_runs,
            "catchup": self.catchup,
        }

    @classmethod
    def from_input(cls, data: dict[str, Any]) -> ScheduleTarget:
        return cls(
            data["dag_id"],
            data["state_machine_arn"],
            Schedule.from_dict(data["schedule"]),
            data.get("timezone", "UTC"),
            data["scheduled_time"],
            int(data.get("max_active_runs", 16)),  # a schedule created before these settings
            bool(data.get("catchup", False)),
        )


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 time as the contract carries it (`Z` allowed); naive times are UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class DagRun:
    """A run: the execution's input, and what tasks see as `context["dag_run"]`."""

    dag_id: str
    run_id: str
    run_type: RunType
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: dict[str, Any] = field(default_factory=dict)
    clear_number: int = 0  # Airflow's: how many times the run was cleared (each clear is a new execution)
    # An asset-triggered run's: the asset events it consumed (airstep.runtime.store.assets.AssetEvent.to_dict)
    triggering_asset_events: tuple[dict[str, Any], ...] = ()
    # A run a TriggerDagRunOperator started: the task instance that asked ({dag_id, run_id, task_id, map_index})
    triggering_task: dict[str, Any] | None = None

    def to_input(self) -> dict[str, Any]:
        data = {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "run_type": self.run_type.value,
            "logical_date": _iso(self.logical_date),
            "data_interval_start": _iso(self.data_interval_start),
            "data_interval_end": _iso(self.data_interval_end),
            "conf": self.conf,
        }
        if self.triggering_asset_events:
            data["triggering_asset_events"] = list(self.triggering_asset_events)
        if self.triggering_task:
            data["triggering_task"] = self.triggering_task
        return data | ({"clear_number": self.clear_number} if self.clear_number else {})

    @property
    def slot_holder(self) -> str:
        """What holds the run's slot under max_active_runs: each clear of a run takes its own, so that
        a late end of an earlier execution frees nothing of the next."""
        return self.run_id if not self.clear_number else f"{self.run_id}#{self.clear_number}"

    @classmethod
    def from_input(cls, data: dict[str, Any]) -> DagRun:
        """The run an execution input describes; KeyError if it is not an airstep run's input."""
        return cls(
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            run_type=RunType(data.get("run_type", RunType.MANUAL)),
            logical_date=parse_time(data.get("logical_date")),
            data_interval_start=parse_time(data.get("data_interval_start")),
            data_interval_end=parse_time(data.get("data_interval_end")),
            conf=dict(data.get("conf") or {}),
            clear_number=int(data.get("clear_number") or 0),
            triggering_asset_events=tuple(data.get("triggering_asset_events") or ()),
            triggering_task=data.get("triggering_task"),
        )


# DAG bundles: a deployed DAG's version is the bundle (snapshot of the DAG prefix) it was parsed from;
# its tasks load their file from that bundle, `s3://<bucket>/bundles/<id>.zip`.
BUNDLES_PREFIX = "bundles/"
BUNDLE_MANIFEST = ".airstep-bundle.json"  # in the zip: {"prefix": "dags/", "files": {path: s3 version}}
_BUNDLE_VERSION = "bundle:"


def bundle_version(bundle_id: str) -> str:
    return _BUNDLE_VERSION + bundle_id


def bundle_of(version: str) -> str | None:
    """The bundle id a DAG version names, or None for a single file's version (local runs)."""
    return version.removeprefix(_BUNDLE_VERSION) if version.startswith(_BUNDLE_VERSION) else None


# Airflow's `queue` picks the worker pool that runs a task; in airstep, the executor function (and so
# the task role): the default queue runs on the environment's executor, queue "q" on "<it>-q".
DEFAULT_QUEUE = "default"
# Airflow's pool of every task that names none: airstep does not limit it (README: Pools).
DEFAULT_POOL = "default_pool"
# The start-run function's request to look at these DAGs' asset queues (an asset was updated, or an
# asset-triggered run ended): {"asset_consumers": [dag_id, ...]}.
ASSET_CONSUMERS = "asset_consumers"
TRIGGER_RUN = "trigger_run"  # start-run's request from the task runner: {"trigger_run": TriggerRequest, "by": {...}}
XCOM_TRIGGER_RUN_ID = "trigger_run_id"  # the XCom a TriggerDagRunOperator's task pushes: the run it triggered
# A run's own pool when its DAG sets max_active_tasks (no pool of a task may be named so).
RUN_POOL_PREFIX = "max_active_tasks:"


def run_pool(dag_id: str, run_id: str, clear_number: int) -> str:
    """The pool that holds the DAG's max_active_tasks for one execution of a run."""
    return f"{RUN_POOL_PREFIX}{dag_id}:{clear_number}:{run_id}"


def executor_function(default_function: str, queue: str) -> str:
    return default_function if queue == DEFAULT_QUEUE else f"{default_function}-{queue}"


EXECUTION_NAME_CHARS = 80  # Step Functions' limit on execution names
_EXECUTION_NAME_BAD = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/]")


def execution_name(run_id: str, clear_number: int = 0) -> str:
    """A run's execution name (each clear of the run is an execution of its own). Step Functions
    forbids ':' and friends; the mapping is deterministic, so a duplicate start of the same run
    reuses the same name (and Step Functions refuses it)."""
    suffix = f"__clear{clear_number}" if clear_number else ""
    name, room = _EXECUTION_NAME_BAD.sub("-", run_id), EXECUTION_NAME_CHARS - len(suffix)
    if len(name) > room:  # cut, with a digest of the whole id: two long ids never share a name
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:12]
        name = f"{name[: room - len(digest) - 1]}-{digest}"
    return name + suffix


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution of this name has (or will have) in the state machine."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
