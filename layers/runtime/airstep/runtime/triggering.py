"""TriggerDagRunOperator's runs: what becomes of the request a try's code made.

Task code never starts runs (it runs with the task role): the operator's `execute` renders its
arguments and hands them back as a TriggerRequest; the task runner asks start-run (the function that
starts every run) to start it as `airstep trigger` would (within the DAG's max_active_runs, its conf
checked against its params), and from the answer succeeds, skips or fails the task as Airflow 3.3's
task runner does (`_handle_trigger_dag_run`). With `wait_for_completion`, each later poke reads the
triggered run's state from the records; nothing runs between pokes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from airstep.contract import TRIGGER_RUN, XCOM_TRIGGER_RUN_ID, DagRun, parse_time
from airstep.errors import ParamValidationError
from airstep.model import TaskModel
from airstep.runtime.admission import admit
from airstep.runtime.clients import client
from airstep.runtime.constants import START_RUN_FUNCTION_ENV
from airstep.runtime.scheduling import manual_run
from airstep.runtime.store import MetadataStore, RunKey
from airstep.runtime.xcoms import merged_xcoms
from airstep.sdk.param import resolve_params
from airstep.states import RunState, RunType, TaskState

if TYPE_CHECKING:
    from airstep.runtime.executor import TryResult

RUN_ID = re.compile(r"[A-Za-z0-9_.~:+-]+")  # Airflow's default allowed_run_id_pattern
MAX_RUN_ID_CHARS = 250  # Airflow's run_id column


@dataclass(frozen=True, slots=True)
class TriggerRequest:
    """The run a TriggerDagRunOperator's try asks for, its arguments rendered."""

    dag_id: str
    run_id: str
    conf: dict[str, Any]
    logical_date: str | None  # ISO-8601; None: a run without one
    skip_when_already_exists: bool = False
    wait_for_completion: bool = False
    fail_when_dag_is_paused: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TriggerRequest:
        return cls(
            str(data["dag_id"]),
            str(data["run_id"]),
            dict(data.get("conf") or {}),
            data.get("logical_date"),
            bool(data.get("skip_when_already_exists")),
            bool(data.get("wait_for_completion")),
            bool(data.get("fail_when_dag_is_paused")),
        )


@dataclass(frozen=True, slots=True)
class Triggered:
    """What came of a request: the task's state (success, skipped or failed; `final`: without its
    retries), why (`error`, of Airflow's exception `kind`), and the run triggered (its id is the
    XCom `trigger_run_id`)."""

    state: TaskState
    error: str | None = None
    kind: str | None = None
    final: bool = False
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "state": self.state.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Triggered:
        return cls(**{**data, "state": TaskState(data["state"])})


def start_triggered_run(event: dict[str, Any], sfn: Any, store: MetadataStore) -> dict[str, Any]:
    """start-run's part: `event` is {"trigger_run": TriggerRequest, "by": the asking task instance}."""
    return trigger(store, sfn, TriggerRequest.from_dict(event[TRIGGER_RUN]), dict(event["by"])).to_dict()


def handle(task: TaskModel, result: TryResult, by: dict[str, Any]) -> TryResult:
    """The try's result once start-run has triggered the run it asked for (or not): success, skipped
    or failed, or, waiting for completion, a poke not done that watches the run. Asking again for the
    same try (a retried runner) gets the same answer: start-run knows the run this try started."""
    from airstep.runtime.executor import TryResult  # the runner's (start-run needs none of it)

    assert result.trigger is not None
    request = TriggerRequest.from_dict(result.trigger)
    waits = request.wait_for_completion and task.sensor is not None and task.trigger is not None
    if request.wait_for_completion and not waits:  # raised by a task that is no TriggerDagRunOperator
        error = "only a TriggerDagRunOperator waits for the run it triggers (wait_for_completion)"
        return TryResult(TaskState.FAILED, result.xcoms, error, "AirflowException")
    response = client("lambda").invoke(
        FunctionName=os.environ[START_RUN_FUNCTION_ENV],
        Payload=json.dumps({TRIGGER_RUN: result.trigger, "by": by}).encode(),
    )
    body = json.loads(response["Payload"].read() or b"null")
    if "FunctionError" in response:  # the runner's error: retried without using a task retry
        raise RuntimeError(f"start-run could not trigger the run: {body.get('errorType') if body else None}")
    done = Triggered.from_dict(body)
    if done.run_id is None:
        return TryResult(done.state, result.xcoms, done.error, done.kind, final=done.final)
    xcoms = merged_xcoms(result.xcoms or "{}", json.dumps({XCOM_TRIGGER_RUN_ID: done.run_id}))
    if waits:
        return TryResult(TaskState.UP_FOR_RESCHEDULE, xcoms, watching=f"{request.dag_id} {done.run_id}")
    return TryResult(TaskState.SUCCESS, xcoms)


def poke(store: MetadataStore, task: TaskModel, watching: str, elapsed: float) -> TryResult:
    """A later poke of a try waiting for completion (`elapsed` seconds since it began): the
    triggered run's state, read from the records. Past the wait's limit (its execution_timeout) the
    try fails as Airflow's execution_timeout fails it: AirflowTaskTimeout, and its retries apply."""
    from airstep.runtime.executor import TryResult

    assert task.trigger is not None and task.sensor is not None
    dag_id, run_id = watching.split(" ", 1)  # a DAG id has no space
    found = store.get_run(RunKey(dag_id, run_id))
    if found is None:
        error = f"the run {run_id} of {dag_id} has no record any more (expired, or its DAG's records were removed)"
        return TryResult(TaskState.FAILED, error=error, error_type="AirflowException")
    state = found.state.value
    if state in task.trigger.failed_states:
        error = f"{dag_id} failed with failed state {state}"
        return TryResult(TaskState.FAILED, error=error, error_type="AirflowException")
    if state in task.trigger.allowed_states:
        return TryResult(TaskState.SUCCESS)
    if elapsed > task.sensor.timeout:
        error = f"Timeout: waited {elapsed:.0f} s for the run {run_id} of {dag_id} (limit {task.sensor.timeout:.0f} s)"
        return TryResult(TaskState.FAILED, error=error, error_type="AirflowTaskTimeout")
    return TryResult(TaskState.UP_FOR_RESCHEDULE, watching=watching)


def trigger(store: MetadataStore, sfn: Any, request: TriggerRequest, by: dict[str, Any]) -> Triggered:
    """Start (or queue) the run asked for; `by`: the task instance and try asking (the run's record
    says so, and a second request of the same try is answered from the run it started)."""
    if not RUN_ID.fullmatch(request.run_id) or len(request.run_id) > MAX_RUN_ID_CHARS:
        message = (
            f"The run_id provided {request.run_id!r} does not match regex pattern {RUN_ID.pattern!r} "
            f"or is longer than {MAX_RUN_ID_CHARS} characters"
        )
        return Triggered(TaskState.FAILED, message, "ValueError")
    before = _asked_before(store, request, by)
    if before is not None:  # whatever happened to the DAG since (paused, its params changed)
        return before
    record = store.get_dag(request.dag_id)
    if record is None or record.removed:
        return Triggered(TaskState.FAILED, f"Dag id {request.dag_id} not found (not deployed here)", "DagNotFound")
    if record.paused:
        if request.fail_when_dag_is_paused:
            return Triggered(TaskState.FAILED, f"Dag {request.dag_id} is paused", "DagIsPaused")
        message = (
            f"Dag {request.dag_id} is paused: airstep starts no run of a paused DAG (Airflow would queue it "
            f"until the DAG is unpaused): `airstep dags unpause {request.dag_id}`"
        )
        return Triggered(TaskState.FAILED, message, "DagIsPaused")
    try:
        resolve_params(record.params, dict(record.param_schemas), request.conf)
    except ParamValidationError as exc:  # its message quotes the value, which may be a secret: not here
        why = "has no value" if exc.rule == "required" else f"fails its schema ({exc.rule!r})"
        return Triggered(TaskState.FAILED, f"Dag {request.dag_id}: param {exc.param!r} {why}", "ParamValidationError")
    run = dataclasses.replace(_run_of(request, record.schedule, record.timezone), triggering_task=dict(by))
    admitted = admit(store, sfn, run, record.state_machine_arn, record.max_active_runs)
    if admitted.duplicate:
        again = _asked_before(store, request, by)  # (the same try asking twice at once)
        if again is not None:
            return again
        if request.skip_when_already_exists:  # as Airflow: no error, the task is skipped
            return Triggered(TaskState.SKIPPED, final=True)
        message = f"A Dag Run already exists for Dag {request.dag_id} with run id {request.run_id}"
        return Triggered(TaskState.FAILED, message, "DagRunAlreadyExists", final=True)
    if admitted.state is RunState.FAILED:
        return _could_not_start(request)
    return Triggered(TaskState.SUCCESS, run_id=run.run_id)


def _asked_before(store: MetadataStore, request: TriggerRequest, by: dict[str, Any]) -> Triggered | None:
    """The answer to a request this very try made before (a retried runner asks again), from the run
    it made: its record, or its queue item if start-run stopped between the two writes."""
    known = store.get_run(RunKey(request.dag_id, request.run_id))
    if known is not None:
        made = known.dag_run()
        if made is None or made.triggering_task != dict(by):
            return None
        if known.state is RunState.FAILED and known.execution_arn is None:
            return _could_not_start(request)
        return Triggered(TaskState.SUCCESS, run_id=request.run_id)
    for queued in store.queued_runs(request.dag_id):
        if queued.run.run_id == request.run_id and queued.run.triggering_task == dict(by):
            return Triggered(TaskState.SUCCESS, run_id=request.run_id)  # the promoter starts it
    return None


def _could_not_start(request: TriggerRequest) -> Triggered:
    message = f"the run {request.run_id} of {request.dag_id} could not start (its record says why)"
    return Triggered(TaskState.FAILED, message, "AirflowException")


def _run_of(request: TriggerRequest, schedule: Any, zone: str) -> DagRun:
    """Airflow 3.3 makes it an operator_triggered run (its run id says manual__ all the same)."""
    when = parse_time(request.logical_date)
    if when is None:  # no logical date and no data interval, as Airflow makes it
        return DagRun(request.dag_id, request.run_id, RunType.OPERATOR_TRIGGERED, None, None, None, dict(request.conf))
    run = manual_run(request.dag_id, when.astimezone(UTC), schedule, request.conf, zone)
    return dataclasses.replace(run, run_id=request.run_id, run_type=RunType.OPERATOR_TRIGGERED)
