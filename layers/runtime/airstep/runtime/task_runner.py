"""The task runner: each invocation performs one action of a compiled state machine.

The payloads and their actions are airstep.contract's: run the next try of a task, hold a task at its
gate, record a try the runner could not report, and finalize the run. Running a try is the operator's
own `execute(context)`; the runner decides whether it runs (trigger rules), records every try with
conditional writes, and tells gated downstream tasks when a task has ended.
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from airstep.contract import (
    STATES_TIMEOUT,
    TASK_ID,
    Action,
    AirstepRunnerError,
    AirstepTaskFailed,
    AirstepTaskFailedNoRetry,
    Payload,
    RunOutcome,
    TaskOutcome,
)
from airstep.errors import AirflowFailException, AirflowSkipException
from airstep.runtime.clients import client, metadata_store
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.context import TaskInstanceView, build_context
from airstep.runtime.dag_cache import get_dag
from airstep.runtime.deadline import call_with_deadline
from airstep.runtime.store import MetadataStore, RunKey, TaskInstance, encode_xcom
from airstep.runtime.trigger_rules import decide
from airstep.secrets_masker import RedactingStream, redact
from airstep.states import FAILED_STATES, FINISHED, RunState, TaskState

if TYPE_CHECKING:
    from airstep.sdk.dag import DAG

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace="airstep", service=SERVICE_NAME)
# A try without an execution_timeout stops this long before Lambda would end the invocation, so that
# the runner can still record it.
RECORDING_MARGIN_SECONDS = 15.0


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    payload = Payload.from_event(event)
    logger.append_keys(
        dag_id=payload.run.dag_id, run_id=payload.run.run_id, task_id=payload.task_id, action=payload.action.value
    )
    remaining = context.get_remaining_time_in_millis() / 1000
    return Invocation(payload, metadata_store(), client("stepfunctions"), remaining).handle()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Invocation:
    """One task-runner invocation: its payload, the store and Step Functions client it uses, and the
    seconds left before Lambda ends it."""

    def __init__(self, payload: Payload, store: MetadataStore, sfn: Any, remaining_seconds: float = 900.0) -> None:
        self.payload = payload
        self.store = store
        self.sfn = sfn
        self.remaining_seconds = remaining_seconds
        self.key = RunKey(payload.run.dag_id, payload.run.run_id)

    def handle(self) -> dict[str, Any]:
        """Perform the payload's action. A failure of the runner itself (not of the task's code) is
        raised as AirstepRunnerError, which the state machine retries without using a task retry."""
        try:
            action = self.payload.action
            if action is Action.RUN:
                return self.run_task().to_dict()
            if action is Action.GATE:
                return self.hold_at_gate()
            if action is Action.FAIL:
                return self.record_failure().to_dict()
            return self.finalize().to_dict()
        except (AirstepTaskFailed, AirstepTaskFailedNoRetry):
            raise
        except Exception as exc:
            logger.error("task runner error", extra={"error": redact(traceback.format_exc())})
            metrics.add_metric(name="TaskRunnerErrors", unit=MetricUnit.Count, value=1)
            metrics.flush_metrics()
            raise AirstepRunnerError(_history_message(exc, "the run-task function's log")) from None

    @property
    def dag(self) -> DAG:
        return get_dag(self.payload.dag)

    @property
    def task_id(self) -> str:
        assert self.payload.task_id is not None
        return self.payload.task_id

    # -- run one try ------------------------------------------------------------------------------
    def run_task(self) -> TaskOutcome:
        dag = self.dag
        task = dag.task_dict[self.task_id]
        upstream_ids = sorted(task.upstream_task_ids)
        upstream: dict[str, TaskInstance] = {}
        if upstream_ids:
            upstream = self._settle(dag, upstream_ids, self.store.get_task_instances(self.key, upstream_ids))
            verdict = decide(task.trigger_rule, [upstream[u].state for u in upstream_ids])  # type: ignore[misc]
            if verdict is not None:
                self.store.finish_unfinished(self.key, self.task_id, verdict, _now())
                logger.info("task not run", extra={"state": verdict.value, "trigger_rule": task.trigger_rule.value})
                self.signal()
                return TaskOutcome(self.task_id, verdict)

        started = _now()
        try_number = self.store.begin_try(self.key, self.task_id, started)
        if try_number is None:  # a duplicate invocation of a finished task: report what is recorded
            recorded = self.store.get_task_instances(self.key, [self.task_id])[self.task_id]
            self.signal()
            assert recorded.state is not None
            return TaskOutcome(self.task_id, recorded.state, recorded.try_number)
        logger.info("task try started", extra={"try_number": try_number})
        view = TaskInstanceView(self.store, self.key, self.task_id, try_number, upstream)
        context = build_context(dag, task, self.payload.run, view)
        seconds, limit = self._deadline(task.execution_timeout)
        _mask_task_output()
        try:
            result = call_with_deadline(lambda: task.execute(context), seconds, f"task timed out after {limit}")
            xcom_json = encode_xcom(self.task_id, result) if result is not None else None
        except AirflowSkipException as exc:
            return self._close(try_number, started, TaskState.SKIPPED, redact(str(exc)) or None)
        except BaseException as exc:  # noqa: BLE001 - any failure of user code fails the try
            message = redact(_describe(exc))
            final = isinstance(exc, AirflowFailException) or try_number > task.retries
            state = TaskState.FAILED if final else TaskState.UP_FOR_RETRY
            outcome = self._close(try_number, started, state, message)
            logger.warning("task try failed", extra={"try_number": try_number, "state": state.value, "error": message})
            cause = _history_message(exc, "its task instance record")
            if isinstance(exc, AirflowFailException) or outcome.state is not state:
                raise AirstepTaskFailedNoRetry(cause) from None
            raise AirstepTaskFailed(cause) from None
        outcome = self._close(try_number, started, TaskState.SUCCESS, xcom_json=xcom_json)
        if outcome.state is not TaskState.SUCCESS:  # a later try or a reader ended the instance first
            raise AirstepTaskFailedNoRetry(f"try {try_number} outlived its task instance ({outcome.state})")
        return outcome

    def _deadline(self, execution_timeout: float | None) -> tuple[float, str]:
        """How long the try may run, and that limit in words for the timeout's message."""
        lambda_limit = max(self.remaining_seconds - RECORDING_MARGIN_SECONDS, 0.0)
        if execution_timeout is not None and execution_timeout <= lambda_limit:
            return execution_timeout, f"{execution_timeout:g} s (execution_timeout)"
        return lambda_limit, f"{lambda_limit:g} s (the time left in its Lambda invocation)"

    def _close(
        self, try_number: int, started: str, state: TaskState, error: str | None = None, xcom_json: str | None = None
    ) -> TaskOutcome:
        """End the try. Only a try whose write won (still the running try) tells its gates that the task
        has finished; a late try, superseded by a retry or settled by a reader, changes nothing and
        reports the state on record."""
        ended = _now()
        won = self.store.end_try(self.key, self.task_id, try_number, state, started, ended, error, xcom_json=xcom_json)
        if not won:
            recorded = self.store.get_task_instances(self.key, [self.task_id])[self.task_id]
            logger.warning("late try ignored", extra={"try_number": try_number, "recorded": recorded.state})
            assert recorded.state is not None
            return TaskOutcome(self.task_id, recorded.state, recorded.try_number)
        if state in FINISHED:
            self.signal()
        logger.info("task try ended", extra={"try_number": try_number, "state": state.value})
        return TaskOutcome(self.task_id, state, try_number)

    def _settle(self, dag: DAG, task_ids: list[str], found: dict[str, TaskInstance]) -> dict[str, TaskInstance]:
        """`found` completed for task instances whose steps have all run: one still marked running (or
        never recorded) had a try that timed out or crashed without reporting, and is failed now by its
        first reader."""
        for task_id in task_ids:
            ti = found.get(task_id)
            if ti is not None and ti.state in FINISHED:
                continue
            timeout = dag.task_dict[task_id].execution_timeout
            limit = f"its execution_timeout ({timeout:g} s)" if timeout else "the 900 s Lambda limit"
            message = (
                "the try ended without reporting a result: it ran past "
                f"{limit} or its Lambda crashed (out of memory?); see the execution history"
                if ti is not None
                else "the task never started: the task runner failed before its first try"
            )
            self.store.finish_unfinished(self.key, task_id, TaskState.FAILED, _now(), message)
            found[task_id] = TaskInstance(
                task_id, -1, TaskState.FAILED, ti.try_number if ti else 0, ti.start if ti else None, error=message
            )
        return found

    # -- gates --------------------------------------------------------------------------------------
    def hold_at_gate(self) -> dict[str, Any]:
        assert self.payload.token is not None
        status = self.store.gate_register(self.key, self.task_id, self.payload.token, list(self.payload.wait_for))
        if status.open:
            self._release(self.task_id, status.token)
        return {"task_id": self.task_id, "open": status.open}

    def signal(self) -> None:
        """Tell each gated downstream that this task has ended; open the gates that are now complete."""
        for down in self.payload.signal:
            status = self.store.gate_arrive(self.key, down, self.task_id)
            if status.open:
                self._release(down, status.token)

    def _release(self, task_id: str, token: str | None) -> None:
        """Send the gate's token. At least once: every caller that sees the gate open sends it (a failed
        task signals twice, from its run and from its failure state), and a send for a token whose wait
        already ended is refused harmlessly. A claim-then-send scheme would lose the gate forever if the
        sender died between the two."""
        if token is None:
            return
        try:
            self.sfn.send_task_success(taskToken=token, output=json.dumps({TASK_ID: task_id}))
        except ClientError as exc:  # the gate's state already ended (timeout, execution stopped)
            if exc.response.get("Error", {}).get("Code") not in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                raise

    # -- failures the runner could not report ---------------------------------------------------
    def record_failure(self) -> TaskOutcome:
        """A try ended in a way the runner could not record (timeout, crash): fail the task instance."""
        message = _caught_message(self.payload.caught)
        if self.store.finish_unfinished(self.key, self.task_id, TaskState.FAILED, _now(), message):
            logger.warning("task failed outside the runner", extra={"error": message})
        self.signal()
        return TaskOutcome(self.task_id, TaskState.FAILED)

    # -- the run's verdict ------------------------------------------------------------------------
    def finalize(self) -> RunOutcome:
        """Airflow's rule: a run fails if any leaf task failed or is upstream_failed."""
        dag = self.dag
        recorded = {ti.task_id: ti for ti in self.store.task_instances(self.key)}
        instances = self._settle(dag, list(dag.task_dict), recorded)
        leaves = [t for t, op in dag.task_dict.items() if not op.downstream_task_ids]
        failed_leaves = [t for t in leaves if instances[t].state in FAILED_STATES]
        state = RunState.FAILED if failed_leaves else RunState.SUCCESS
        self.store.finish_run(self.key, state)
        failed = sorted(t for t, ti in instances.items() if ti.state is TaskState.FAILED)
        cause = (
            f"failed tasks: {', '.join(failed)}"
            if failed
            else (f"unfinished tasks: {', '.join(failed_leaves)}" if failed_leaves else "")
        )
        logger.info("run finished", extra={"state": state.value})
        return RunOutcome(state, cause, failed)


def _history_message(exc: BaseException, where: str) -> str:
    """What Step Functions' history keeps of a failure: its type, never its message (a task's message
    may hold a secret the masker does not know)."""
    return f"{type(exc).__name__} (the message is in {where})"


def _mask_task_output() -> None:
    """Mask secrets in what tasks print (their logs), however the process's streams were set up."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)


def _caught_message(caught: dict[str, Any]) -> str:
    """A Catch's {Error, Cause} as one line (a Lambda error's cause is its JSON error report)."""
    name = caught.get("Error", "States.TaskFailed")
    cause = caught.get("Cause", "")
    try:
        details = json.loads(cause)
        cause = details.get("errorMessage", cause) if isinstance(details, dict) else cause
    except (TypeError, ValueError):
        pass
    if name == STATES_TIMEOUT:
        return "task timed out (execution_timeout)"
    return redact(f"{name}: {cause}" if cause else name)
