"""The executor: runs one try of a task's code, and nothing else.

It is the only function that runs task code, under the task role: it cannot read or write run records
or gate tokens. The task runner (`task_runner`) decides that a try runs, sends what the try needs
(the run, the try number, its upstream tasks' XComs, its deadline), and records what comes
back. What the executor returns never carries a secret the task read (messages are masked here, where
the secrets were read).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import inspect
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from airstep.compat.imports import airflow_imports
from airstep.contract import DAG, RUN, TASK_ID, XCOM_RETURN_KEY, DagRef, DagRun
from airstep.errors import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    DownstreamTasksSkipped,
    ParamValidationError,
    PokeNotDone,
)
from airstep.runtime import task_logs
from airstep.runtime.constants import DEFAULT_MAX_MAP_LENGTH, MAX_MAP_LENGTH_ENV, SERVICE_NAME
from airstep.runtime.context import ExternalStates, TaskInstanceView, build_context, current_context
from airstep.runtime.dag_cache import DagVersionError, get_dag
from airstep.runtime.deadline import call_with_deadline
from airstep.runtime.store.task_instances import MAX_RENDERED_MAP_INDEX_CHARS, legacy_xcoms
from airstep.runtime.usage import USAGE, Meter
from airstep.runtime.xcoms import XComError, XComOwner, decode_xcoms, encode_xcoms, fetch_upstream, park_upstream
from airstep.sdk.mapping import MAPPABLE_LITERALS, check_length
from airstep.sdk.operators.trigger_dagrun import DagRunTriggerException
from airstep.sdk.templater import Pulled, render_task, template_env
from airstep.secrets_masker import masked_output, redact
from airstep.states import TaskState

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator

DEADLINE_ALERT = "deadline_alert"  # a missed deadline's callback request: which alert


logger = Logger(service=SERVICE_NAME)
# A try stops this long before Lambda would end the invocation, so that its outcome is still reported.
REPORTING_MARGIN_SECONDS = 10.0
LAMBDA_LIMIT_SECONDS = 900.0
# How long a try's callbacks may run past its limit: within the 15 s the runner keeps to record the
# try (task_runner.RECORDING_MARGIN_SECONDS), well within the step's state timeout margin.
CALLBACK_SECONDS = 10.0


MAX_REQUEST_BYTES = 5_000_000  # Lambda takes 6 MB (6,291,456 bytes) per synchronous request
UPSTREAM_REF = "upstream_ref"


@dataclass(frozen=True, slots=True)
class TryRequest:
    """What the task runner sends: one try of one task, with its upstream tasks' XComs ({key: value}
    as JSON text, or None for a task that pushed none)."""

    dag: DagRef
    run: DagRun
    task_id: str
    try_number: int
    deadline_seconds: float
    upstream: dict[str, Any] = field(default_factory=dict)  # a mapped upstream: a list, by map index
    map_index: int = -1
    measure: bool = False  # count a mapped task's instances instead of running a try
    external: dict[str, Any] | None = None  # an ExternalTaskSensor's poke: what the runner read (ExternalStates)
    earlier_tries: int = 0  # the instance's tries before it was last cleared: its retries count from there
    prepare_call: bool = False  # a service integration's try: render its call's parameters, run no code

    @property
    def log_key(self) -> task_logs.TryKey:
        """Whose log the try's output is."""
        return task_logs.TryKey(self.run.dag_id, self.run.run_id, self.task_id, self.map_index, self.try_number)

    def to_event(self) -> dict[str, Any]:
        return {
            DAG: self.dag.to_dict(),
            RUN: self.run.to_input(),
            TASK_ID: self.task_id,
            "try_number": self.try_number,
            "deadline_seconds": self.deadline_seconds,
            "upstream": self.upstream,
            "map_index": self.map_index,
            "measure": self.measure,
            "external": self.external,
            **({"earlier_tries": self.earlier_tries} if self.earlier_tries else {}),
            **({"prepare_call": True} if self.prepare_call else {}),
        }

    @property
    def owner(self) -> XComOwner:
        return XComOwner(self.run.dag_id, self.run.run_id, self.task_id, self.try_number, self.map_index)

    def to_payload(self) -> bytes:
        """The Lambda request; upstream XComs that would take it past MAX_REQUEST_BYTES travel in the
        XCom bucket instead (`park_upstream`)."""
        event = self.to_event()
        body = json.dumps(event).encode()
        if len(body) > MAX_REQUEST_BYTES and self.upstream:
            event["upstream"], event[UPSTREAM_REF] = {}, park_upstream(self.owner, self.upstream)
            body = json.dumps(event).encode()
        return body

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> TryRequest:
        upstream = fetch_upstream(event[UPSTREAM_REF]) if event.get(UPSTREAM_REF) else event.get("upstream") or {}
        return cls(
            DagRef.from_dict(event[DAG]),
            DagRun.from_input(event[RUN]),
            event[TASK_ID],
            event["try_number"],
            event["deadline_seconds"],
            upstream,
            event.get("map_index", -1),
            event.get("measure", False),
            event.get("external"),
            event.get("earlier_tries", 0),
            bool(event.get("prepare_call", False)),
        )


@dataclass(frozen=True, slots=True)
class TryResult:
    """How the try ended: success, skipped or failed (`final`: without using the remaining retries),
    with the XComs it pushed (its return value among them) as JSON text; or `unloadable` when the DAG
    itself would not load (not the try's fault: the runner retries it)."""

    state: TaskState | None
    xcoms: str | None = None
    error: str | None = None
    error_type: str | None = None
    final: bool = False
    unloadable: bool = False
    skip: tuple[str, ...] = ()  # downstream task ids a branching or short-circuiting try skipped
    length: int | None = None  # a measured mapped task's instance count
    rendered_map_index: str | None = None  # the task's map_index_template, rendered after the try
    until: str | None = None  # a time sensor's poke that is not done: the moment it will be (ISO)
    trigger: dict[str, Any] | None = None  # a TriggerDagRunOperator's request (its state: the runner's to decide)
    watching: str | None = None  # (the runner's) a TriggerDagRunOperator's poke not done: the run it waits for
    call: dict[str, Any] | None = None  # a service integration's try, prepared: its rendered parameters

    def to_dict(self) -> dict[str, Any]:
        return (
            {
                "state": self.state.value if self.state else None,
                "xcoms": self.xcoms,
                "error": self.error,
                "error_type": self.error_type,
                "final": self.final,
                "unloadable": self.unloadable,
                "skip": list(self.skip),
                "length": self.length,
                "rendered_map_index": self.rendered_map_index,
                "until": self.until,
            }
            | ({"trigger": self.trigger} if self.trigger is not None else {})
            | ({"call": self.call} if self.call is not None else {})
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TryResult:
        state = TaskState(data["state"]) if data.get("state") else None
        return cls(
            state,
            data.get("xcoms", legacy_xcoms(data.get("xcom"))),
            data.get("error"),
            data.get("error_type"),
            data.get("final", False),
            data.get("unloadable", False),
            tuple(data.get("skip", ())),
            data.get("length"),
            data.get("rendered_map_index"),
            data.get("until"),
            data.get("trigger"),
            call=data.get("call"),
        )


@dataclass(frozen=True, slots=True)
class RunCallbackRequest:
    """What the task runner sends when a run has ended and its DAG has a callback for the outcome:
    which callbacks (`on_success_callback` or `on_failure_callback`), Airflow's reason, and the task
    instance the callback's context is about (the last failed one, or the last that succeeded).
    With `of_task`, the task's own callbacks for an outcome the runner decided (a trigger's, a
    sensor's timeout), `error` its exception's message."""

    dag: DagRef
    run: DagRun
    callback: str
    reason: str
    task_id: str
    try_number: int
    of_task: bool = False
    error: str | None = None
    xcoms: str | None = None  # (of_task) what the try pushed, as stored: the callback's ti pulls it
    map_index: int = -1

    def to_event(self) -> dict[str, Any]:
        return {
            DAG: self.dag.to_dict(),
            RUN: self.run.to_input(),
            "callback": self.callback,
            "reason": self.reason,
            TASK_ID: self.task_id,
            "try_number": self.try_number,
        } | (
            {"of_task": True, "error": self.error, "xcoms": self.xcoms, "map_index": self.map_index}
            if self.of_task
            else {}
        )

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> RunCallbackRequest:
        return cls(
            DagRef.from_dict(event[DAG]),
            DagRun.from_input(event[RUN]),
            event["callback"],
            event["reason"],
            event[TASK_ID],
            event["try_number"],
            bool(event.get("of_task")),
            event.get("error"),
            event.get("xcoms"),
            int(event.get("map_index", -1)),
        )


@dataclass(frozen=True, slots=True)
class DeadlineCallbackRequest:
    """What the task runner sends when a run missed a deadline: which of its DAG's alerts, and the
    context its callback receives (airstep.runtime.deadline_alerts.callback_context)."""

    dag: DagRef
    run: DagRun
    alert: int
    context: dict[str, Any]

    def to_event(self) -> dict[str, Any]:
        return {DAG: self.dag.to_dict(), RUN: self.run.to_input(), DEADLINE_ALERT: self.alert, "context": self.context}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> DeadlineCallbackRequest:
        return cls(DagRef.from_dict(event[DAG]), DagRun.from_input(event[RUN]), event[DEADLINE_ALERT], event["context"])


def run_deadline_callback(request: DeadlineCallbackRequest, remaining_seconds: float = float("inf")) -> dict[str, Any]:
    """Call a missed deadline's callback as Airflow does: its kwargs, and `context` if it takes one;
    a coroutine function awaited. Never raises for what the callback does."""
    try:
        callback = get_dag(request.dag).deadline[request.alert].callback
        function = callback.callable or import_string(callback.path)
    except Exception as exc:  # noqa: BLE001 - the DAG no longer loads, or the callback is not there
        logger.warning("deadline callback not run", extra={"error": redact(_describe(exc))})
        return {"ran": 0}
    kwargs = dict(callback.kwargs)
    if accepts_context(function):
        kwargs["context"] = request.context

    def call() -> Any:
        result = function(**kwargs)
        return asyncio.run(_awaited(result)) if inspect.isawaitable(result) else result

    name = getattr(function, "__name__", callback.path)
    with masked_output, airflow_imports():
        try:
            call_with_deadline(call, remaining_seconds, f"deadline callback {name} ran out of time")
        except BaseException as exc:  # noqa: BLE001 - a callback never changes the outcome
            logger.warning("deadline callback failed", extra={"callback": name, "error": redact(_describe(exc))})
            print(f"deadline callback {name} failed: {redact(_describe(exc))}", flush=True)
            return {"ran": 0}
    return {"ran": 1}


def accepts_context(function: Any) -> bool:
    """Whether a callable takes `context` (by name, or in **kwargs), as Airflow's callback triggers ask."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # (no signature to read: Airflow passes it)
        return True
    return any(p.name == "context" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def import_string(path: str) -> Any:
    """The object at a dotted path (module.attribute)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the try (or the callbacks) and answer its result with this invocation's own usage."""
    meter = Meter(int(context.memory_limit_in_mb))
    remaining = context.get_remaining_time_in_millis() / 1000 - REPORTING_MARGIN_SECONDS
    if DEADLINE_ALERT in event:
        missed = DeadlineCallbackRequest.from_event(event)
        logger.append_keys(dag_id=missed.run.dag_id, run_id=missed.run.run_id, deadline_alert=missed.alert)
        return {**run_deadline_callback(missed, remaining), USAGE: meter.report()}
    if "callback" in event:
        callback = RunCallbackRequest.from_event(event)
        logger.append_keys(dag_id=callback.run.dag_id, run_id=callback.run.run_id, callback=callback.callback)
        return {**run_dag_callbacks(callback, remaining), USAGE: meter.report()}
    request = TryRequest.from_event(event)
    logger.append_keys(dag_id=request.run.dag_id, run_id=request.run.run_id, task_id=request.task_id)
    return {**run_try(request, remaining).to_dict(), USAGE: meter.report()}


def run_try(request: TryRequest, remaining_seconds: float = float("inf")) -> TryResult:
    """Run the try's code to its end or its deadline, and the task's callbacks around it, as an
    Airflow worker runs them (on_execute before; on_success, on_skipped, on_retry or on_failure
    after); never raises for anything the task or a callback does."""
    started = time.monotonic()
    try:
        dag = get_dag(request.dag)
    except DagVersionError as exc:
        return TryResult(None, error=redact(str(exc)), unloadable=True)
    group = dag.task_groups.get(request.task_id) if request.measure else None  # a mapped task group's expand
    task = dag.task_dict[request.task_id] if group is None else next(iter(group))
    view = TaskInstanceView(request.run, task.task_id, request.try_number, request.upstream)
    view.map_index = request.map_index
    view.max_tries = request.earlier_tries + task.retries
    view.external = ExternalStates.from_dict(request.external) if request.external else None
    view.pulled_alone = frozenset(
        t for t, xcoms in request.upstream.items() if isinstance(xcoms, list) and _in_mapped_group(dag.task_dict[t])
    )
    try:
        context = build_context(dag, task, request.run, view)
    except ParamValidationError as exc:  # as Airflow: the task fails at its start, retries or not
        return TryResult(TaskState.FAILED, error=redact(str(exc)), error_type=type(exc).__name__, final=True)
    expand_input = group.expand_input if group is not None else task.expand_input
    if expand_input is not None:
        try:
            with masked_output, airflow_imports(), current_context(context):
                values = expand_input.resolve(context)
            if request.measure:
                return TryResult(
                    TaskState.SUCCESS, length=expand_input.length(request.task_id, values, max_map_length())
                )
            task = _instance(task, task.expand_input.kwargs_of(values, request.map_index))
            context["task"] = task
        except Exception as exc:  # noqa: BLE001 - an input that cannot be mapped fails the task
            return TryResult(TaskState.FAILED, error=redact(_describe(exc)), error_type=type(exc).__name__, final=True)
    limit_seconds = max(min(request.deadline_seconds, remaining_seconds), 0.0)
    if request.prepare_call:
        with masked_output, airflow_imports(), current_context(context), task_logs.capturing(request.log_key):
            run_callbacks(task.on_execute_callback, context, Budget(started, limit_seconds))
            return _prepare_call(task, context, max(limit_seconds - (time.monotonic() - started), 0.0))
    why = "execution_timeout" if limit_seconds == task.execution_timeout else "the time left in its Lambda invocation"
    # Callbacks share the try's time (the state machine's timeout for the step allows the try and a
    # margin, not more), and those after the try get at most CALLBACK_SECONDS beyond its limit.
    budget = Budget(started, min(remaining_seconds, limit_seconds + CALLBACK_SECONDS))
    with masked_output, airflow_imports(), current_context(context), task_logs.capturing(request.log_key):
        run_callbacks(task.on_execute_callback, context, Budget(started, limit_seconds))
        seconds = max(limit_seconds - (time.monotonic() - started), 0.0)
        result, callback_list = _try(task, view, context, seconds, f"{limit_seconds:g} s ({why})", request)
        run_callbacks(callback_list, context, budget)
    return result


def _try(
    task: BaseOperator, view: TaskInstanceView, context: dict[str, Any], seconds: float, limit: str, request: TryRequest
) -> tuple[TryResult, list[Any]]:
    """The try's outcome, and the callbacks Airflow runs for it (`context` gets the exception)."""
    try:
        result = call_with_deadline(
            lambda: _render_and_execute(task, context), seconds, f"task timed out after {limit}"
        )
        named = _rendered_map_index(task, context)  # as Airflow: one that fails, fails the try (before any push)
        if request.map_index < 0 and _maps_over(task):  # Airflow checks what a mapped task will expand over
            check_mappable(result if task.do_xcom_push else None)
        if result is not None and task.do_xcom_push:
            view.pushed.update(_multiple_outputs(result) if task.multiple_outputs else {})
            view.pushed[XCOM_RETURN_KEY] = result
        xcoms = encode_xcoms(request.owner, view.pushed)
        outcome = TryResult(TaskState.SUCCESS, xcoms=xcoms, skip=tuple(view.skipped), rendered_map_index=named)
        return outcome, task.on_success_callback
    except DownstreamTasksSkipped as skipped:  # a branch or short circuit: it succeeded, others skip
        outcome = TryResult(TaskState.SUCCESS, xcoms=_kept(request.owner, view.pushed), skip=tuple(skipped.tasks))
        return outcome, task.on_success_callback
    except DagRunTriggerException as asked:  # the runner starts the run, then decides the try's state
        return TryResult(None, _kept(request.owner, view.pushed), trigger=asked.to_request()), []
    except PokeNotDone as not_done:  # a sensor whose criteria are not met yet: the runner pokes again later
        until = not_done.until.astimezone(UTC).isoformat() if not_done.until else None
        return TryResult(TaskState.UP_FOR_RESCHEDULE, _kept(request.owner, view.pushed), until=until), []
    except AirflowSkipException as exc:
        outcome = TryResult(TaskState.SKIPPED, _kept(request.owner, view.pushed), error=redact(str(exc)) or None)
        return outcome, task.on_skipped_callback
    except BaseException as exc:  # noqa: BLE001 - any failure of task code fails the try
        task_logs.failed_with(exc)
        final = isinstance(exc, AirflowFailException)
        error, kind = redact(_describe(exc)), type(exc).__name__
        context["exception"] = exc
        last = final or request.try_number - request.earlier_tries > task.retries  # the runner's rule
        named = _rendered_map_index(task, context, quiet=True)
        outcome = TryResult(
            TaskState.FAILED, _kept(request.owner, view.pushed), error, kind, final=final, rendered_map_index=named
        )
        return outcome, task.on_failure_callback if last else task.on_retry_callback


@dataclass(frozen=True, slots=True)
class Budget:
    """The seconds callbacks may still take: what is left of the invocation (a callback that runs
    past it is stopped, so that the try's outcome is still reported)."""

    started: float
    seconds: float

    def left(self) -> float:
        return min(max(self.seconds - (time.monotonic() - self.started), 0.0), LAMBDA_LIMIT_SECONDS)


def run_callbacks(callbacks: list[Any], context: dict[str, Any], budget: Budget) -> None:
    """Call each callback with the context; one that raises (or runs out of time) is logged, and
    neither the others nor the outcome change, as in Airflow."""
    for callback in callbacks:
        name = getattr(callback, "__name__", repr(callback))
        try:
            call_with_deadline(lambda cb=callback: cb(context), budget.left(), f"callback {name} ran out of time")
        except BaseException as exc:  # noqa: BLE001 - a callback never changes the outcome
            logger.warning("callback failed", extra={"callback": name, "error": redact(_describe(exc))})
            print(f"callback {name} failed: {redact(_describe(exc))}", flush=True)


def run_dag_callbacks(request: RunCallbackRequest, remaining_seconds: float = float("inf")) -> dict[str, Any]:
    """Run a DAG's run callbacks (Airflow's dag.handle_callback): the context of the task instance
    named, with `reason`. Returns how many ran; never raises for what a callback does."""
    started = time.monotonic()
    try:
        dag = get_dag(request.dag)
        task = dag.task_dict[request.task_id]
        view = TaskInstanceView(request.run, request.task_id, request.try_number, {})
        view.map_index = request.map_index
        view.pushed.update(decode_xcoms(request.xcoms) or {})  # what the try pushed: its ti pulls them
        context = build_context(dag, task, request.run, view)
    except Exception as exc:  # noqa: BLE001 - the DAG no longer loads, or its params fail: no callback
        logger.warning("run callbacks not run", extra={"error": redact(_describe(exc))})
        return {"ran": 0}
    context["reason"] = request.reason
    if request.error is not None:
        context["exception"] = AirflowException(request.error)
    callbacks = getattr(task if request.of_task else dag, request.callback)
    # a task's own callbacks write to its try's log (a DAG's, to the executor's)
    key = task_logs.TryKey(request.run.dag_id, request.run.run_id, task.task_id, request.map_index, request.try_number)
    captured = task_logs.capturing(key) if request.of_task else contextlib.nullcontext()
    with masked_output, airflow_imports(), current_context(context), captured:
        run_callbacks(callbacks, context, Budget(started, remaining_seconds))
    return {"ran": len(callbacks)}


def _rendered_map_index(task: BaseOperator, context: dict[str, Any], *, quiet: bool = False) -> str | None:
    """The task's `map_index_template` rendered in the try's context (which the task may have added
    to), as Airflow names a mapped instance; `quiet`: after a failure, a template that does not
    render is no name rather than a second error."""
    template = task.map_index_template
    if template is None:
        return None
    try:
        rendered = template_env(task.dag).from_string(template).render(context)
    except Exception:
        if quiet:
            return None
        raise
    return redact(str(rendered))[:MAX_RENDERED_MAP_INDEX_CHARS] or None


def _prepare_call(task: BaseOperator, context: dict[str, Any], seconds: float) -> TryResult:
    """A service integration's parameters from its templated fields, rendered in the try's context.
    Rendering that fails fails the try, and so does a rendered value holding a secret: the call's
    parameters are written into the execution's history."""
    from airstep.sdk.operators.amazon.base import AwsOperator

    assert isinstance(task, AwsOperator)
    names = task.templated_fields()
    try:
        rendered = call_with_deadline(lambda: render_task(task, context), seconds, "rendering its fields timed out")
        call = rendered.rendered_parameters(names)
    except BaseException as exc:  # noqa: BLE001 - a field that does not render fails the try
        task_logs.failed_with(exc)
        return TryResult(TaskState.FAILED, error=redact(_describe(exc)), error_type=type(exc).__name__)
    return TryResult(TaskState.RUNNING, call=call)


def _render_and_execute(task: BaseOperator, context: dict[str, Any]) -> Any:
    """Render the task's template fields (on a copy), then run it, as an Airflow worker does."""
    rendered = render_task(task, context)
    context["task"] = rendered
    return rendered.execute(context)


def _multiple_outputs(result: Any) -> dict[str, Any]:
    """A `multiple_outputs` task's return value, one XCom per key (Airflow's checks and messages)."""
    if not isinstance(result, Mapping):
        raise TypeError(f"Returned output was type {type(result)} expected dictionary for multiple_outputs")
    for key in result:
        if not isinstance(key, str):
            raise TypeError(
                "Returned dictionary keys must be strings when using multiple_outputs, "
                f"found {key} ({type(key)}) instead"
            )
    return dict(result)


def _kept(owner: XComOwner, pushed: dict[str, Any]) -> str | None:
    """What a try that skipped or failed had pushed (kept, as Airflow keeps pushes), if it can be."""
    try:
        return encode_xcoms(owner, pushed)
    except XComError:
        return None


def _in_mapped_group(task: BaseOperator) -> bool:
    from airstep.sdk.taskgroup import mapped_group_of

    return mapped_group_of(task.task_group) is not None


def _maps_over(task: BaseOperator) -> bool:
    """Whether a mapped task or task group downstream expands over this task's output."""
    from airstep.sdk.taskgroup import mapped_group_of

    dag = task.dag
    for downstream in task.downstream_task_ids:
        operator = dag.task_dict[downstream]
        group = mapped_group_of(operator.task_group)
        for expand_input in (operator.expand_input, group.expand_input if group else None):
            if expand_input is not None and any(ref.operator is task for ref in expand_input.references()):
                return True
    return False


def check_mappable(value: Any) -> None:
    """Airflow's checks on a value a mapped task will expand over, made when it is pushed (so the
    task that pushed it fails, with its retries): pushed at all, a list or a dict, not too long."""
    if value is None:
        raise ValueError("XComForMappingNotPushed: did not push XCom for task mapping")
    if not isinstance(value, MAPPABLE_LITERALS):
        raise TypeError(f"UnmappableXComTypePushed: unmappable return type {type(value).__qualname__!r}")
    check_length(len(value), max_map_length())


def max_map_length() -> int:
    """How many instances a mapped task may have (Airflow's [core] max_map_length)."""
    return int(os.environ.get(MAX_MAP_LENGTH_ENV, DEFAULT_MAX_MAP_LENGTH))


def _instance(task: BaseOperator, kwargs: dict[str, Any]) -> BaseOperator:
    """A mapped instance of `task`: its share of the expanded arguments set."""
    from airstep.sdk.taskflow import DecoratedPythonOperator

    instance = copy.copy(task)
    if isinstance(task, DecoratedPythonOperator):  # op_kwargs is a template field: rendering unwraps
        instance.op_kwargs = {**task.op_kwargs, **kwargs}
    else:
        for name, value in kwargs.items():
            rendered = name in task.template_fields
            setattr(instance, name, value if rendered or not isinstance(value, Pulled) else value.value)
    return instance


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
