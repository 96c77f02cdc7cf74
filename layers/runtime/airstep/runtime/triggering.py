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
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from airstep.contract import TRIGGER_RUN, DagRun, parse_time
from airstep.errors import ParamValidationError
from airstep.model import TaskModel
from airstep.runtime.admission import admit
from airstep.runtime.clients import client
from airstep.runtime.constants import START_RUN_FUNCTION_ENV
from airstep.runtime.scheduling import manual_run
from airstep.runtime.store import MetadataStore, RunKey
from airstep.runtime.xcoms import merged_xcoms
from airstep.sdk.param import resolve_params
from airstep.states import RunType, TaskState

if TYPE_CHECKING:
    from airstep.runtime.executor import TryResult

XCOM_RUN_ID = "trigger_run_id"


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
    """The try's result once the run it asked for is triggered (or not) by start-run: success,
    skipped or failed, or, waiting for completion, a poke not done that watches the run."""
    from airstep.runtime.executor import TryResult  # the runner's (start-run needs none of it)

    if task.trigger is None:
        error = "only a TriggerDagRunOperator triggers DAG runs"
        return TryResult(TaskState.FAILED, result.xcoms, error, "DagRunTriggerException")
    assert result.trigger is not None
    request = TriggerRequest.from_dict(result.trigger)
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
    xcoms = merged_xcoms(result.xcoms or "{}", json.dumps({XCOM_RUN_ID: done.run_id}))
    if request.wait_for_completion and task.sensor is not None:
        return TryResult(TaskState.UP_FOR_RESCHEDULE, xcoms, watching=f"{request.dag_id} {done.run_id}")
    return TryResult(TaskState.SUCCESS, xcoms)


def poke(store: MetadataStore, task: TaskModel, watching: str) -> TryResult:
    """A later poke of a try waiting for completion: the triggered run's state, read from the records."""
    from airstep.runtime.executor import TryResult

    assert task.trigger is not None
    dag_id, run_id = watching.split(" ", 1)  # a DAG id has no space
    found = store.get_run(RunKey(dag_id, run_id))
    state = found.state.value if found is not None else None
    if state in task.trigger.failed_states:
        return TryResult(
            TaskState.FAILED, error=f"{dag_id} failed with failed state {state}", error_type="AirflowException"
        )
    if state in task.trigger.allowed_states:
        return TryResult(TaskState.SUCCESS)
    return TryResult(TaskState.UP_FOR_RESCHEDULE, watching=watching)


def trigger(store: MetadataStore, sfn: Any, request: TriggerRequest, by: dict[str, Any]) -> Triggered:
    """Start (or queue) the run asked for; `by`: the task instance asking (the run's record says so)."""
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
    except ParamValidationError as exc:
        return Triggered(TaskState.FAILED, f"Dag {request.dag_id}: {exc}", "ParamValidationError")
    run = dataclasses.replace(_run_of(request, record.schedule, record.timezone), triggering_task=dict(by))
    admitted = admit(store, sfn, run, record.state_machine_arn, record.max_active_runs)
    if admitted.duplicate:
        if request.skip_when_already_exists:  # as Airflow: no error, the task is skipped
            return Triggered(TaskState.SKIPPED, final=True)
        message = f"A Dag Run already exists for Dag {request.dag_id} with run id {request.run_id}"
        return Triggered(TaskState.FAILED, message, "DagRunAlreadyExists", final=True)
    return Triggered(TaskState.SUCCESS, run_id=run.run_id)


def _run_of(request: TriggerRequest, schedule: Any, zone: str) -> DagRun:
    when = parse_time(request.logical_date)
    if when is None:  # no logical date and no data interval, as Airflow makes it
        return DagRun(request.dag_id, request.run_id, RunType.MANUAL, None, None, None, dict(request.conf))
    run = manual_run(request.dag_id, when.astimezone(UTC), schedule, request.conf, zone)
    return dataclasses.replace(run, run_id=request.run_id)
