"""The task runner: runs one task try per invocation, and the gate/fail/finalize steps around it.

Payloads (built by the compiled state machine; `ctx` is the state data `{"dag": ..., "run": ...}`):

- ``{"task_id", "ctx", "signal"?}``: run the next try of a task.
- ``{"action": "gate", "task_id", "wait_for", "token", "ctx"}``: hold a task until its gate upstreams end.
- ``{"action": "fail", "task_id", "ctx", "signal"?}``: record a try the runner could not report (timeout, crash).
- ``{"action": "finalize", "ctx"}``: decide the run's state from its leaf tasks.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from airstep.errors import AirflowFailException, AirflowSkipException
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.context import RunInfo, TaskInstanceView, build_context
from airstep.runtime.dag_cache import get_dag
from airstep.runtime.errors import AirstepTaskFailed, AirstepTaskFailedNoRetry
from airstep.runtime.states import FAILED_STATES, FINISHED, TaskState
from airstep.runtime.store import MetadataStore, RunKey, TaskInstance, encode_xcom
from airstep.runtime.trigger_rules import RUN, decide
from airstep.sdk.operators import BashOperator, PythonOperator
from airstep.sdk.taskflow import XComArg

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.dag import DAG

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace="airstep", service=SERVICE_NAME)

# Built once per warm process. The local engine runs many invocations at once in one process, so
# the pair is published whole, under a lock: no invocation may see a store without its client.
_clients: tuple[MetadataStore, Any] | None = None
_clients_lock = threading.Lock()


def reset() -> None:
    """Forget cached clients (the local engine calls this when it starts a fresh moto backend)."""
    global _clients
    with _clients_lock:
        _clients = None


def _runtime() -> tuple[MetadataStore, Any]:
    global _clients
    with _clients_lock:
        if _clients is None:
            _clients = (MetadataStore(), boto3.client("stepfunctions"))
        return _clients


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    store, sfn = _runtime()
    action = event.get("action", "run")
    ctx = event["ctx"]
    run = RunInfo.from_input(ctx["run"])
    key = RunKey(run.dag_id, run.run_id)
    logger.append_keys(dag_id=run.dag_id, run_id=run.run_id, task_id=event.get("task_id"), action=action)
    if action == "run":
        task_id, signal = event["task_id"], event.get("signal", [])
        try:
            return _run(store, sfn, key, run, ctx["dag"], task_id, signal)
        except (AirstepTaskFailed, AirstepTaskFailedNoRetry):
            raise
        except Exception as exc:  # the runner itself failed (e.g. the DAG file cannot be loaded)
            logger.exception("task runner error")
            metrics.add_metric(name="TaskRunnerErrors", unit=MetricUnit.Count, value=1)
            metrics.flush_metrics()
            if store.finish_unfinished(key, task_id, TaskState.FAILED, _now(), _describe(exc)):
                _signal(store, sfn, key, task_id, signal)
            raise
    if action == "gate":
        _gate(store, sfn, key, event["task_id"], event["wait_for"], event["token"])
        return {"task_id": event["task_id"], "state": "waiting"}
    if action == "fail":
        return _record_failure(store, sfn, key, event["task_id"], ctx.get("error") or {}, event.get("signal", []))
    if action == "finalize":
        return _finalize(store, key, ctx["dag"])
    raise ValueError(f"unknown action {action!r}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _run(
    store: MetadataStore, sfn: Any, key: RunKey, run: RunInfo, dag_ref: dict[str, str], task_id: str, signal: list[str]
) -> dict[str, Any]:
    dag = get_dag(dag_ref["file"], dag_ref["version"], dag_ref["dag_id"])
    task = dag.task_dict[task_id]
    upstream = sorted(task.upstream_task_ids)
    found: dict[str, TaskInstance] = {}
    if upstream:
        found = _settle(store, dag, key, upstream, store.get_task_instances(key, upstream))
        states = [found[u].state for u in upstream]
        verdict = decide(task.trigger_rule, states)
        if verdict != RUN:
            store.finish_unfinished(key, task_id, TaskState(verdict), _now())
            logger.info("task not run", extra={"state": verdict, "trigger_rule": task.trigger_rule})
            _signal(store, sfn, key, task_id, signal)
            return {"task_id": task_id, "state": verdict, "try_number": 0}

    started = _now()
    try_number = store.begin_try(key, task_id, started)
    if try_number is None:  # a duplicate invocation of a finished task: report what is recorded
        recorded = store.get_task_instances(key, [task_id])[task_id]
        _signal(store, sfn, key, task_id, signal)
        return {"task_id": task_id, "state": recorded.state, "try_number": recorded.try_number}
    logger.info("task try started", extra={"try_number": try_number})
    attempt = _Try(key, task_id, try_number, started)
    view = TaskInstanceView(store, key, task_id, try_number)
    try:
        result = _execute(dag, task, run, view, found)
        xcom_json = encode_xcom(task_id, result) if result is not None else None
    except AirflowSkipException as exc:
        return _close(store, sfn, attempt, TaskState.SKIPPED, signal, str(exc) or None)
    except Exception as exc:  # noqa: BLE001 - any failure of user code fails the try
        message = _describe(exc)
        final = isinstance(exc, AirflowFailException) or try_number > task.retries
        state = TaskState.FAILED if final else TaskState.UP_FOR_RETRY
        _close(store, sfn, attempt, state, signal if final else [], message)
        logger.warning("task try failed", extra={"try_number": try_number, "state": state.value, "error": message})
        if isinstance(exc, AirflowFailException):
            raise AirstepTaskFailedNoRetry(message) from None
        raise AirstepTaskFailed(message) from None
    return _close(store, sfn, attempt, TaskState.SUCCESS, signal, xcom_json=xcom_json)


def _settle(
    store: MetadataStore, dag: DAG, key: RunKey, task_ids: list[str], found: dict[str, TaskInstance]
) -> dict[str, TaskInstance]:
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
        store.finish_unfinished(key, task_id, TaskState.FAILED, _now(), message)
        found[task_id] = TaskInstance(
            task_id,
            -1,
            TaskState.FAILED.value,
            ti.try_number if ti else 0,
            ti.start if ti else None,
            None,
            None,
            message,
        )
    return found


@dataclass(frozen=True, slots=True)
class _Try:
    key: RunKey
    task_id: str
    number: int
    started: str


def _close(
    store: MetadataStore,
    sfn: Any,
    attempt: _Try,
    state: TaskState,
    signal: list[str],
    error: str | None = None,
    xcom_json: str | None = None,
) -> dict[str, Any]:
    key, task_id = attempt.key, attempt.task_id
    store.end_try(key, task_id, attempt.number, state, attempt.started, _now(), error, xcom_json=xcom_json)
    _signal(store, sfn, key, task_id, signal)
    logger.info("task try ended", extra={"try_number": attempt.number, "state": state.value})
    return {"task_id": task_id, "state": state.value, "try_number": attempt.number}


def _execute(
    dag: DAG, task: BaseOperator, run: RunInfo, ti: TaskInstanceView, upstream: dict[str, TaskInstance]
) -> Any:
    context = build_context(dag, task, run, ti)
    if isinstance(task, PythonOperator):
        values = {t: json.loads(u.xcom) for t, u in upstream.items() if u.xcom is not None}
        args = [_resolve(a, values) for a in task.op_args]
        kwargs = {k: _resolve(v, values) for k, v in task.op_kwargs.items()}
        return _call(task.python_callable, args, kwargs, context)
    if isinstance(task, BashOperator):
        return _run_bash(task, context, run)
    return None  # EmptyOperator


def _resolve(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, XComArg):
        return values.get(value.operator.task_id)
    if isinstance(value, list):
        return [_resolve(v, values) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, values) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, values) for k, v in value.items()}
    return value


def _call(fn: Any, args: list[Any], kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
    """Airflow's rule: a **kwargs callable gets the whole context, others the keys they name."""
    signature = inspect.signature(fn)
    params = signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        extra = {k: v for k, v in context.items() if k not in kwargs}
    else:
        bound = signature.bind_partial(*args, **kwargs).arguments
        extra = {k: context[k] for k in params if k in context and k not in bound}
    return fn(*args, **kwargs, **extra)


def _run_bash(task: BashOperator, context: dict[str, Any], run: RunInfo) -> str | None:
    env = dict(os.environ) if task.env is None or task.append_env else {}
    env.update(task.env or {})
    env.update(
        AIRFLOW_CTX_DAG_ID=run.dag_id,
        AIRFLOW_CTX_TASK_ID=task.task_id,
        AIRFLOW_CTX_DAG_RUN_ID=run.run_id,
        AIRFLOW_CTX_TRY_NUMBER=str(context["ti"].try_number),
        AIRFLOW_CTX_LOGICAL_DATE=context.get("ts") or "",
    )
    completed = subprocess.run(  # noqa: S603 - running the DAG author's command is the point
        ["bash", "-c", task.bash_command],
        env=env,
        cwd=task.cwd,
        capture_output=True,
        text=True,
        timeout=task.execution_timeout,
        check=False,
    )
    for line in completed.stdout.splitlines():
        print(f"[{task.task_id}] {line}", flush=True)
    for line in completed.stderr.splitlines():
        print(f"[{task.task_id}] {line}", flush=True)
    if completed.returncode in task.skip_on_exit_code:
        raise AirflowSkipException(f"bash command exited with code {completed.returncode}")
    if completed.returncode != 0:
        raise RuntimeError(f"Bash command failed. The command returned a non-zero exit code {completed.returncode}.")
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else None


def _gate(store: MetadataStore, sfn: Any, key: RunKey, task_id: str, wait_for: list[str], token: str) -> None:
    status = store.gate_register(key, task_id, token, wait_for)
    if status.open:
        _release(sfn, task_id, status.token)


def _signal(store: MetadataStore, sfn: Any, key: RunKey, task_id: str, downstream: list[str]) -> None:
    """Tell each gated downstream that `task_id` has finished; open the gates that are now complete."""
    for down in downstream:
        status = store.gate_arrive(key, down, task_id)
        if status.open:
            _release(sfn, down, status.token)


def _release(sfn: Any, task_id: str, token: str | None) -> None:
    """Send the gate's token. At least once: every caller that sees the gate open sends it (a failed
    task signals twice, from its run and from its failure state), and a send for a token whose wait
    already ended is refused harmlessly. A claim-then-send scheme would lose the gate forever if the
    sender died between the two."""
    if token is None:
        return
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps({"gate": task_id}))
    except ClientError as exc:  # the gate's state already ended (timeout, execution stopped)
        if exc.response.get("Error", {}).get("Code") not in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            raise


def _record_failure(
    store: MetadataStore, sfn: Any, key: RunKey, task_id: str, error: dict[str, Any], signal: list[str]
) -> dict[str, Any]:
    """A try ended in a way the runner could not record (timeout, crash): fail the task instance."""
    message = _error_message(error)
    if store.finish_unfinished(key, task_id, TaskState.FAILED, _now(), message):
        logger.warning("task failed outside the runner", extra={"error": message})
    _signal(store, sfn, key, task_id, signal)
    return {"task_id": task_id, "state": TaskState.FAILED.value}


def _error_message(error: dict[str, Any]) -> str:
    name = error.get("Error", "States.TaskFailed")
    cause = error.get("Cause", "")
    try:
        details = json.loads(cause)
        cause = details.get("errorMessage", cause) if isinstance(details, dict) else cause
    except (TypeError, ValueError):
        pass
    if name == "States.Timeout":
        return "task timed out (execution_timeout)"
    return f"{name}: {cause}" if cause else name


def _finalize(store: MetadataStore, key: RunKey, dag_ref: dict[str, str]) -> dict[str, Any]:
    """Airflow's rule: a run fails if any leaf task failed or is upstream_failed."""
    dag = get_dag(dag_ref["file"], dag_ref["version"], dag_ref["dag_id"])
    instances = _settle(store, dag, key, list(dag.task_dict), {ti.task_id: ti for ti in store.task_instances(key)})
    leaves = [t for t, op in dag.task_dict.items() if not op.downstream_task_ids]
    failed_leaves = [t for t in leaves if t not in instances or instances[t].state in FAILED_STATES]
    state = "failed" if failed_leaves else "success"
    store.finish_run(key, state, _now())
    failed = sorted(t for t, ti in instances.items() if ti.state == TaskState.FAILED)
    cause = (
        f"failed tasks: {', '.join(failed)}"
        if failed
        else (f"unfinished tasks: {', '.join(failed_leaves)}" if failed_leaves else "")
    )
    logger.info("run finished", extra={"state": state})
    return {"state": state, "cause": cause, "failed_tasks": failed}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
