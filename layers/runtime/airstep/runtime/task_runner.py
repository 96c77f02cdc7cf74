"""The task runner: each invocation performs one action of a compiled state machine, and runs no task code.

The payloads and their actions are airstep.contract's: run the next try of a task, hold a task at its
gate, record a try the runner could not report, and finalize the run. The runner reads the DAG's graph
model (never its file), decides whether a task runs (trigger rules), records every try with conditional
writes, hands the try itself to the executor function (the only place task code runs, under the task
role) and tells gated downstream tasks when a task has ended.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import traceback
import zlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from airstep.containers import NO_LIMIT_SECONDS
from airstep.contract import (
    DEFAULT_QUEUE,
    INLINE_MAP_MAX_ITEMS,
    POKE_DONE,
    POKE_LAP,
    POKE_WAIT,
    POOL_UNAVAILABLE,
    STATES_TIMEOUT,
    TASK_ID,
    Action,
    AirstepRunnerError,
    AirstepTaskFailed,
    AirstepTaskFailedNoRetry,
    Payload,
    RunOutcome,
    TaskOutcome,
    executor_function,
    expand_answer,
)
from airstep.errors import ParamValidationError
from airstep.model import OUTCOME_CALLBACK, DagModel, SensorPolicy, TaskModel
from airstep.runtime import assets, container_tries, deadline_alerts, pooling, triggering
from airstep.runtime.clients import client
from airstep.runtime.constants import (
    DEFAULT_EXECUTOR_MEMORY_MB,
    EXECUTOR_FUNCTION_ENV,
    EXECUTOR_MEMORY_ENV,
    SERVICE_NAME,
)
from airstep.runtime.context import ExternalStates
from airstep.runtime.dag_cache import get_model
from airstep.runtime.executor import DeadlineCallbackRequest, RunCallbackRequest, TryRequest, TryResult
from airstep.runtime.map_items import write_map_items
from airstep.runtime.service_calls import ended_call
from airstep.runtime.store import MetadataStore, RunKey, TaskInstance, metadata_store
from airstep.runtime.store.gates import GateStatus
from airstep.runtime.store.pools import Taken
from airstep.runtime.store.runs import seconds_between
from airstep.runtime.store.task_instances import PokeWait, instance_label
from airstep.runtime.trigger_rules import Decision, Role, decide
from airstep.runtime.usage import USAGE, LambdaUsage, Meter
from airstep.runtime.xcoms import merged_xcoms
from airstep.secrets_masker import redact
from airstep.states import FAILED_STATES, FINISHED, RunState, TaskState

logger = Logger(service=SERVICE_NAME)
TRY_ENDED = "task try ended"  # a log line: template.yaml's dashboard queries it
metrics = Metrics(namespace="airstep", service=SERVICE_NAME)
# A try without an execution_timeout stops this long before the runner's own invocation would end, so
# that the runner can still record it.
RECORDING_MARGIN_SECONDS = 15.0
NEVER_STARTED = "the task never started: the task runner failed before its first try"


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    payload = Payload.from_event(event)
    logger.append_keys(
        dag_id=payload.run.dag_id, run_id=payload.run.run_id, task_id=payload.task_id, action=payload.action.value
    )
    remaining = context.get_remaining_time_in_millis() / 1000
    meter = Meter(int(context.memory_limit_in_mb))
    invocation = Invocation(payload, metadata_store(), client("stepfunctions"), remaining, meter)
    invocation.function_arn = context.invoked_function_arn  # a deadline's schedule invokes the runner again
    return invocation.handle()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Invocation:
    """One task-runner invocation: its payload, the store and Step Functions client it uses, the
    seconds left before Lambda ends it, and the meter of its Lambda usage (None: not metered)."""

    def __init__(
        self,
        payload: Payload,
        store: MetadataStore,
        sfn: Any,
        remaining_seconds: float = 900.0,
        meter: Meter | None = None,
    ) -> None:
        self.payload = payload
        self.meter = meter
        self.function_arn: str | None = None
        self.store = store
        self.sfn = sfn
        self.remaining_seconds = remaining_seconds
        self.key = RunKey(payload.run.dag_id, payload.run.run_id, payload.run.clear_number)
        self.skips: set[str] = set()  # downstream tasks this invocation skipped
        self.earlier_tries = 0  # the running try's instance had these before it was last cleared
        self.tries_before: tuple[Any, ...] = ()  # ... and these ended tries, as stored (its history)
        self.usage_before = LambdaUsage()  # ... and its invocations before this one used these
        self.usage_recorded: LambdaUsage | None = None  # this invocation's usage, once on the instance's record
        self.released: set[str] = set()  # instances whose pool slots this invocation gave back

    def handle(self) -> dict[str, Any]:
        """Perform the payload's action. A failure of the runner itself (not of the task's code) is
        raised as AirstepRunnerError, which the state machine retries without using a task retry."""
        try:
            return self._perform()
        finally:
            self._record_usage()

    def _record_usage(self) -> None:
        """Add this invocation's Lambda usage to its run's, unless a try's record carries it already
        (what it costs is informative: a failure to record it changes nothing else)."""
        if self.meter is None:
            return
        usage, recorded = self.meter.total(), self.usage_recorded
        if recorded is not None:  # what it has done since: an executor it called (its own few ms are left)
            if usage.requests == recorded.requests:
                return
            usage = LambdaUsage(usage.requests - recorded.requests, usage.mb_ms - recorded.mb_ms)
        label = instance_label(self.payload.task_id or "", self.payload.map_index)
        try:
            self.store.add_lambda_usage(self.key, usage, zlib.crc32(label.encode()))
        except Exception as exc:  # noqa: BLE001
            logger.warning("usage not recorded", extra={"error": redact(str(exc))})

    def _perform(self) -> dict[str, Any]:
        try:
            action = self.payload.action
            if action is Action.RUN:
                outcome = replace(self.run_task(), map_index=self.payload.map_index)
                if outcome.state in FINISHED:  # however it finished (a skip before its try too)
                    self._release_pool(self.task_id, self.payload.map_index)
                if outcome.poke is None and self.model.task_map[self.task_id].sensor is not None:
                    outcome = replace(outcome, poke={POKE_DONE: True, POKE_WAIT: 0, POKE_LAP: False})
                return (self._with_bypass(outcome) if self.payload.guards else outcome).to_dict()
            if action is Action.GATE:
                return self.hold_at_gate()
            if action is Action.EXPAND:
                return self.expand()
            if action is Action.SIGNAL:
                self.signal()
                return {TASK_ID: self.task_id}
            if action is Action.FAIL:
                return self.record_failure().to_dict()
            if action is Action.TIME_OUT:
                return self.time_out()
            if action is Action.ACQUIRE:
                return self.acquire()
            if action is Action.ARM:
                return self.arm_deadlines()
            if action is Action.DECIDE_DEADLINE:
                return self.decide_deadline(self.payload.alert)
            if action is Action.END_CALL:
                return self.end_call().to_dict()
            return self.finalize().to_dict()
        except (AirstepTaskFailed, AirstepTaskFailedNoRetry):
            raise
        except Exception as exc:
            logger.error("task runner error", extra={"error": redact(traceback.format_exc())})
            metrics.add_metric(name="TaskRunnerErrors", unit=MetricUnit.Count, value=1)
            metrics.flush_metrics()
            raise AirstepRunnerError(_history_message(exc, "the run-task function's log")) from None

    @property
    def model(self) -> DagModel:
        return get_model(self.payload.dag)

    @property
    def task_id(self) -> str:
        assert self.payload.task_id is not None
        return self.payload.task_id

    # -- run one try ------------------------------------------------------------------------------
    def run_task(self) -> TaskOutcome:
        model = self.model
        task = model.task_map[self.task_id]
        # A mapped task's instance was decided when its task expanded; a task in a mapped task group
        # is decided at each map index.
        decided = self.payload.map_index >= 0 and task.map_group is None
        upstream: dict[str, TaskInstance] = {}
        mapped: dict[str, list[TaskInstance]] = {}
        if task.upstream:
            own, upstream, mapped, indirect_setups = self._read_upstreams(model, task)
            if not decided and own is not None and own.state in FINISHED:  # skipped by a branch before it ran
                self.signal()
                return TaskOutcome(self.task_id, own.state, own.try_number)
            if not decided and own is None and self._skipped_into_group(model, task):
                return self._not_run(task, Decision(False, TaskState.SKIPPED))
            if not decided:
                decision = self._decision(task, upstream, indirect_setups, mapped)
                if decision is None:  # an early task's gate opens only once its rule is decided
                    raise RuntimeError(f"task {self.task_id!r} was released before its trigger rule was decided")
                if not decision.runs:
                    return self._not_run(task, decision)
        return self._run_try(
            model, task, {**self._pulled_xcoms(model, task), **_upstream_xcoms(model, upstream, mapped)}
        )

    def _pulled_xcoms(self, model: DagModel, task: TaskModel) -> dict[str, Any]:
        """The XComs of the ancestors the task's xcom_pull calls name beyond its upstream (TaskModel.pulls),
        as far as they have ended (an early task may run before them: None, as Airflow pulls nothing
        yet); read, never settled: their own steps may still be running."""
        if not task.pulls:
            return {}
        pulled: dict[str, Any] = dict.fromkeys(task.pulls)
        unmapped = [t for t in task.pulls if not model.task_map[t].mapped]
        for task_id, ti in self.store.get_task_instances(self.key, unmapped).items():
            pulled[task_id] = ti.xcoms if ti.state in FINISHED else None
        for task_id in task.pulls:
            if model.task_map[task_id].mapped:
                length, instances = self.store.get_mapped(self.key, task_id)
                ended = {ti.map_index: ti.xcoms for ti in instances if ti.state in FINISHED}
                never = _never_expanded(model.task_map[task_id])
                pulled[task_id] = never if length is None else [ended.get(index) for index in range(length)]
        return pulled

    def _skipped_into_group(self, model: DagModel, task: TaskModel) -> bool:
        """Whether a branch outside the task's mapped task group skipped it (for every instance)."""
        if task.map_group is None or self.payload.map_index < 0:
            return False
        branches = [u for u in task.upstream if model.task_map[u].skips_downstream]
        outside = [u for u in branches if model.task_map[u].map_group != task.map_group]
        return bool(outside) and self.store.skips_every_instance(self.key, self.task_id)

    def _read_upstreams(
        self, model: DagModel, task: TaskModel
    ) -> tuple[TaskInstance | None, dict[str, TaskInstance], dict[str, list[TaskInstance]], list[str]]:
        """The task's own instance, its ended upstream instances (mapped upstreams: every instance,
        by map index; in a mapped task group, its upstreams in the group at its own map index), and
        its relevant setups that are not direct upstreams. An upstream whose steps have all run but
        which never reported is failed now (see `_settle`)."""
        early = self.task_id in model.early_tasks  # an early task's upstreams may still be running
        indirect_setups = [s for s in model.relevant_setups(self.task_id) if s not in task.upstream]
        index = self.payload.map_index
        group = task.map_group if index >= 0 else None
        inside = [  # read at this map index: upstreams and setups in the same mapped task group
            u for u in [*task.upstream, *indirect_setups] if group is not None and model.task_map[u].map_group == group
        ]
        outside = [u for u in [*task.upstream, *indirect_setups] if u not in inside]
        # a mapped task's instance was decided at expand: its own record is not needed
        own_id = [self.task_id] if index < 0 or group is not None else []
        found = self.store.get_task_instances(self.key, [*outside, *([] if group else own_id)])
        at_index = self.store.get_task_instances(self.key, [*inside, *own_id], index) if group else {}
        own = (at_index if group else found).pop(self.task_id, None)
        mapped = self._mapped_upstreams(model, outside)
        if early:
            upstream = {u: ti for u, ti in found.items() if ti.state in FINISHED}
        else:
            upstream = self._settle(model, [u for u in outside if u not in mapped], found)
        upstream |= self._settle(model, inside, at_index, index)
        return own, upstream, mapped, indirect_setups

    def _mapped_upstreams(self, model: DagModel, relevant: list[str]) -> dict[str, list[TaskInstance]]:
        """The instances of each of `relevant` (upstreams, indirect setups) that expanded, in map-index
        order; an instance that never reported is failed now, as `_settle` fails an unmapped one."""
        found = {u: self._instances(u) for u in relevant if model.task_map[u].mapped}
        return {u: instances for u, instances in found.items() if instances is not None}

    def _instances(self, task_id: str, listed: list[TaskInstance] | None = None) -> list[TaskInstance] | None:
        """A mapped task's instances in map-index order, one that never reported failed now; None if
        the task never expanded (it was settled as a whole, or its expand step never ran). `listed`:
        the run's instances already read (without values), else they are read with their values."""
        if listed is None:
            length, instances = self.store.get_mapped(self.key, task_id)
        else:
            length = self.store.map_length(self.key, task_id)
            instances = [ti for ti in listed if ti.task_id == task_id and ti.map_index >= 0]
        if length is None:
            return None
        by_index = {ti.map_index: ti for ti in instances}
        settled = []
        for index in range(length):
            ti = by_index.get(index)
            if ti is None or ti.state not in FINISHED:
                now, message = _now(), "the mapped instance ended without reporting a result"
                self.store.finish_unfinished(self.key, task_id, TaskState.FAILED, now, message, map_index=index)
                self._release_pool(task_id, index)
                ti = TaskInstance(
                    task_id, index, TaskState.FAILED, ti.try_number if ti else 0, None, now, error=message
                )
            settled.append(ti)
        return settled

    # -- a mapped task ----------------------------------------------------------------------------
    def expand(self) -> dict[str, Any]:
        """Decide a mapped task as a whole, then count its instances (the executor resolves its
        expanded arguments): the indexes its Map runs. A task settled without running, an input that
        cannot be mapped (failed) and an empty one (skipped, as Airflow) run no instance."""
        model = self.model
        if self.task_id in model.map_groups:
            return self._expand_group(model)
        task = model.task_map[self.task_id]
        upstream: dict[str, TaskInstance] = {}
        mapped: dict[str, list[TaskInstance]] = {}
        if task.upstream:
            own, upstream, mapped, indirect_setups = self._read_upstreams(model, task)
            if own is not None and own.state in FINISHED:
                return expand_answer(0)
            decision = self._decision(task, upstream, indirect_setups, mapped)
            assert decision is not None  # a mapped task is never an early one
            if not decision.runs:
                self._not_run(task, decision)
                return expand_answer(0)
        recorded = self.store.map_length(self.key, self.task_id)
        if recorded is not None:  # expanded before (a retried step, or a clear that kept it): as it was
            return self._expanded([self.task_id], recorded)
        measured = self._measure(task, _upstream_xcoms(model, upstream, mapped))
        if measured.length is None or measured.state is TaskState.FAILED:
            error = measured.error or "the task's expanded arguments could not be counted"
            self.store.finish_unfinished(self.key, self.task_id, TaskState.FAILED, _now(), error)
            return expand_answer(0)
        if measured.length == 0:
            self.store.finish_unfinished(self.key, self.task_id, TaskState.SKIPPED, _now())
            return expand_answer(0)
        return self._expanded([self.task_id], measured.length)

    def _measure(self, task: TaskModel, xcoms: dict[str, Any]) -> TryResult:
        """The executor counts the instances of this payload's mapped task (or task group), on
        `task`'s queue, from its upstreams' XComs."""
        request = TryRequest(
            self.payload.dag, self.payload.run, self.task_id, 0, self._deadline(None), xcoms, measure=True
        )
        return self._invoke_executor(task, request)

    def _expanded(self, task_ids: list[str], length: int) -> dict[str, Any]:
        """Record that `task_ids` (a mapped task, or a mapped task group's tasks) run `length`
        instances each, and answer the indexes: inline, or listed in S3 for a Distributed Map."""
        reader = None
        if length > INLINE_MAP_MAX_ITEMS and self.payload.distributed:  # more than one inline wave: children
            reader = write_map_items(self.payload.run.dag_id, self.payload.run.run_id, self.task_id, length)
        for task_id in task_ids:
            self.store.set_map_length(self.key, task_id, length)
        logger.info("mapped task expanded", extra={"instances": length, "distributed": reader is not None})
        return expand_answer(length, reader)

    def _expand_group(self, model: DagModel) -> dict[str, Any]:
        """A mapped task group: as in Airflow, every task of the group runs once per instance of the
        group's expansion, decided at its map index, whatever its upstreams outside the group did.
        Only an expansion that cannot be counted (its input's producer did not succeed) or is empty
        settles the group's tasks as a whole: upstream_failed, or skipped."""
        members = [model.task_map[m] for m in model.map_groups[self.task_id]]
        inside = {m.task_id for m in members}
        outer = sorted({u for m in members for u in m.upstream if u not in inside})
        found = self.store.get_task_instances(self.key, [*outer, *inside])
        if all(m in found and found[m].state in FINISHED for m in inside):  # an earlier invocation settled it
            return expand_answer(0)
        recorded = [self.store.map_length(self.key, m.task_id) for m in members]
        if None not in recorded and len(set(recorded)) == 1:  # expanded before and kept by a clear
            return self._expanded([m.task_id for m in members], recorded[0])  # type: ignore[list-item]
        mapped = self._mapped_upstreams(model, outer)
        upstream = self._settle(
            model, [u for u in outer if u not in mapped], {u: found[u] for u in outer if u in found}
        )
        measured = self._measure(members[0], _upstream_xcoms(model, upstream, mapped))
        if measured.length is not None and measured.state is not TaskState.FAILED and measured.length > 0:
            return self._expanded([m.task_id for m in members], measured.length)
        states = {ti.state for ti in [*upstream.values(), *(ti for tis in mapped.values() for ti in tis)]}
        error = None
        if measured.length == 0 or (TaskState.SKIPPED in states and not states & FAILED_STATES):
            state = TaskState.SKIPPED
        elif states & FAILED_STATES:
            state = TaskState.UPSTREAM_FAILED
        else:
            state, error = (
                TaskState.FAILED,
                measured.error or "the task group's expanded arguments could not be counted",
            )
        for member in members:
            self.store.finish_unfinished(self.key, member.task_id, state, _now(), error)
        return expand_answer(0)

    def _run_try(self, model: DagModel, task: TaskModel, xcoms: dict[str, Any]) -> TaskOutcome:
        """Run the next try of the task (instance) on the executor and record how it ended."""
        started = _now()
        index = self.payload.map_index
        if task.calls_service:  # a run step delivered again: the try waiting for its call answers
            waiting = self.store.resume_poke(self.key, self.task_id, calling=True)
            if waiting is not None and waiting.calling is not None:
                call = json.loads(waiting.calling)
                written = container_tries.result_of(call) if task.container is not None else None
                if written is not None:  # its container ended and its record step did not: end the try now
                    return self._end_waiting(model, task, waiting, written, decided_here=False)
                return TaskOutcome(self.task_id, TaskState.RUNNING, waiting.try_number, call=call)
        resumable = task.sensor is not None or task.trigger is not None  # a try that waits, or asks start-run
        resumed = self.store.resume_poke(self.key, self.task_id) if resumable and index < 0 else None
        pokes, pushed = 0, None
        if resumed is not None:  # a sensor's try, between two pokes
            try_number, started, pokes, pushed = resumed.try_number, resumed.started, resumed.pokes, resumed.pushed
            earlier = resumed.earlier
            self.tries_before, self.usage_before = resumed.tries, resumed.usage
            if resumed.until is not None and seconds_between(resumed.until, _now()) < 0:
                # a time sensor woken before its moment: its timeout has come, no need to poke
                result = TryResult(TaskState.UP_FOR_RESCHEDULE, pushed, until=resumed.until)
                return self._not_done(task, try_number, started, pokes, result)
        else:
            begun = self.store.begin_try(self.key, self.task_id, started, index)
            if begun is None:  # finished: a duplicate invocation, or a task a clear kept: report the record
                recorded = self._recorded()
                if recorded.state is TaskState.SUCCESS and task.outlets and recorded.end:
                    self._update_assets(recorded.try_number, recorded.end)  # the first invocation may have stopped
                self._signal_unless_instance()
                assert recorded.state is not None
                return TaskOutcome(self.task_id, recorded.state, recorded.try_number)
            try_number, earlier = begun.number, begun.earlier
            self.tries_before, self.usage_before = begun.tries, begun.usage
        self.earlier_tries = earlier
        logger.info("task try started", extra={"try_number": try_number, "map_index": index})
        asked = resumed is not None and resumed.asking is not None  # the request is on record: keep the try
        run = self.payload.run
        by = {"dag_id": run.dag_id, "run_id": run.run_id, "task_id": self.task_id, "map_index": index}
        try:
            decided_here = resumed is not None and (resumed.watching is not None or resumed.asking is not None)
            if resumed is not None and resumed.watching is not None:  # waiting for a run it triggered: no code
                elapsed = seconds_between(started, _now())
                result = triggering.poke(self.store, task, resumed.watching, elapsed)
            elif resumed is not None and resumed.asking is not None:  # asked before: ask again, run no code
                asking = TryResult(None, pushed, trigger=json.loads(resumed.asking))
                result = triggering.handle(task, asking, {**by, "try_number": try_number})
            else:
                request = TryRequest(
                    self.payload.dag,
                    self.payload.run,
                    self.task_id,
                    try_number,
                    self._deadline(task.execution_timeout) if task.container is None else _container_deadline(task),
                    xcoms,
                    index,
                    external=self._external_states(task.sensor) if task.sensor else None,
                    earlier_tries=earlier,
                )
                if task.calls_service:  # a service integration, or a container's: its call comes next
                    result = self._prepare_call(task, request)
                    if result.call is not None:
                        return self._await_call(try_number, result.call)
                    decided_here = True  # its fields did not render: the runner runs its callbacks
                else:
                    result = self._invoke_executor(task, request)
                if result.unloadable:  # the DAG would not load: not this try's fault, and perhaps transient
                    raise RuntimeError(f"the DAG could not be loaded: {result.error}")
                if result.trigger is not None:  # a TriggerDagRunOperator asked for a run: start-run starts it
                    if resumable and index < 0:  # on record first: a retried runner asks again, runs no code
                        asking_json = json.dumps(result.trigger)
                        if not self.store.await_poke(
                            self.key,
                            self.task_id,
                            try_number,
                            TaskState.RUNNING,
                            pokes,
                            result.xcoms,
                            asking=asking_json,
                        ):  # ended meanwhile (a timeout, a reader): ask for nothing
                            raise AirstepTaskFailedNoRetry(f"try {try_number} outlived its task instance")
                        asked, pushed = True, result.xcoms
                    result = triggering.handle(task, result, {**by, "try_number": try_number})
                    decided_here = True
        except Exception:  # the try never ran its code: take it back, so that a retry does not count it
            if asked:  # ... but this one has: it stays on record, asking, for the runner's retry
                raise
            if resumed is not None:
                watching = resumed.watching
                self.store.await_poke(
                    self.key, self.task_id, try_number, _between_pokes(task), pokes, pushed, watching=watching
                )
            else:
                self.store.abandon_try(self.key, self.task_id, try_number, index)
            raise
        assert result.state is not None
        if pushed is not None:  # a poke-mode sensor's try keeps what its earlier pokes pushed
            result = replace(result, xcoms=merged_xcoms(pushed, result.xcoms))
        if result.state is TaskState.UP_FOR_RESCHEDULE:
            return self._not_done(task, try_number, started, pokes + 1, result)
        return self._conclude(model, task, try_number, started, result, decided_here)

    def _prepare_call(self, task: TaskModel, request: TryRequest) -> TryResult:
        """A service integration's try before its call: the parameters its templated fields render to
        (the executor renders them, checks the run's params, and runs any on_execute_callback), or the
        failure to; with nothing to render, the run's params checked here, as a task's start checks them.
        A try in a container: its request, handed over for the container's executor."""
        if task.container is not None:
            return container_tries.hand_over(task, request)
        assert task.integration is not None
        if task.integration.prepare:
            return self._invoke_executor(task, replace(request, prepare_call=True))
        try:
            self.model.resolve_params(self.payload.run.conf)
        except ParamValidationError as exc:
            return TryResult(TaskState.FAILED, error=redact(str(exc)), error_type=type(exc).__name__, final=True)
        return TryResult(TaskState.RUNNING, call={})

    def _await_call(self, try_number: int, call: dict[str, Any]) -> TaskOutcome:
        """The try waits for its call (the record step takes it up); the call gets `call`."""
        calling = json.dumps(call, separators=(",", ":"))
        if not self.store.await_poke(self.key, self.task_id, try_number, TaskState.RUNNING, 0, calling=calling):
            raise AirstepTaskFailedNoRetry(f"try {try_number} outlived its task instance")
        logger.info("task try calls its service", extra={"try_number": try_number})
        return TaskOutcome(self.task_id, TaskState.RUNNING, try_number, call=call)

    def end_call(self) -> TaskOutcome:
        """A service integration's call has ended: end its try with the call's result or error (a
        container's: with the result its executor wrote, which ran the task's callbacks)."""
        model = self.model
        task = model.task_map[self.task_id]
        waiting = self.store.resume_poke(self.key, self.task_id, calling=True)
        if waiting is None:  # ended meanwhile (a duplicate invocation, a reader that settled it): as recorded
            recorded = self._recorded()
            self._signal_unless_instance()
            if recorded.state is TaskState.UP_FOR_RETRY:  # the Retry runs the next try, as it did for the first
                raise AirstepTaskFailed(
                    f"try {recorded.try_number} failed (the message is in its task instance record)"
                )
            if recorded.state in FAILED_STATES:
                raise AirstepTaskFailedNoRetry(
                    f"the task is {recorded.state} (the message is in its task instance record)"
                )
            assert recorded.state is not None
            return TaskOutcome(self.task_id, recorded.state, recorded.try_number)
        call = json.loads(waiting.calling or "{}")  # (the parameters the run step gave the call)
        if task.container is not None:
            result, ran = container_tries.taken_back(call, self.payload.call_result, self.payload.call_error)
            return self._end_waiting(model, task, waiting, result, decided_here=not ran)
        assert task.integration is not None
        limit = task.integration.time_limit(task.execution_timeout)
        rendered = {**call, **self.payload.call_parameters}
        result = ended_call(task.integration, self.payload.call_result, self.payload.call_error, limit, rendered)
        return self._end_waiting(model, task, waiting, result, decided_here=True)

    def _end_waiting(
        self, model: DagModel, task: TaskModel, waiting: PokeWait, result: TryResult, decided_here: bool
    ) -> TaskOutcome:
        """End a try that waited for its call, as `result` says."""
        self.earlier_tries = waiting.earlier
        self.tries_before, self.usage_before = waiting.tries, waiting.usage
        return self._conclude(model, task, waiting.try_number, waiting.started, result, decided_here)

    def _conclude(
        self, model: DagModel, task: TaskModel, try_number: int, started: str, result: TryResult, decided_here: bool
    ) -> TaskOutcome:
        """End the try as `result` says: skips it made, its record, its callbacks when the runner
        decided its outcome; a failure raises for the state machine's Retry (or its Catch)."""
        assert result.state is not None
        index = self.payload.map_index
        result = _checked_skips(model, self.task_id, result)
        for skipped in result.skip:  # before this try ends; an early task already running keeps running
            target = model.task_map[skipped].map_group
            if index >= 0:  # a mapped instance skips only its own group's tasks, at its map index
                if target is not None and target == task.map_group:  # (Airflow 3.3.2 skips none: README)
                    self.store.finish_unfinished(
                        self.key, skipped, TaskState.SKIPPED, _now(), map_index=index, unstarted_only=True
                    )
            elif target is None:
                if self.store.finish_unfinished(self.key, skipped, TaskState.SKIPPED, _now(), unstarted_only=True):
                    self.skips.add(skipped)
            else:  # into a mapped task group: each instance of the task is skipped when it comes to run
                self.store.skip_every_instance(self.key, skipped)
        if result.state is not TaskState.FAILED:
            outcome = self._close(
                try_number, started, result.state, result.error, result.xcoms, result.rendered_map_index
            )
            if outcome.state is not result.state:  # a later try or a reader ended the instance first
                raise AirstepTaskFailedNoRetry(f"try {try_number} outlived its task instance ({outcome.state})")
            if decided_here:
                self._task_callbacks(task, outcome.state, try_number, result.error, result.xcoms)
            return outcome
        final = result.final or try_number - self.earlier_tries > task.retries
        state = TaskState.FAILED if final else TaskState.UP_FOR_RETRY
        outcome = self._close(try_number, started, state, result.error, result.xcoms, result.rendered_map_index)
        if decided_here and outcome.state is state:
            self._task_callbacks(task, state, try_number, result.error, result.xcoms)
        logger.warning("task try failed", extra={"try_number": try_number, "state": state.value, "error": result.error})
        cause = f"{result.error_type or 'TaskFailed'} (the message is in its task instance record)"
        if result.final or outcome.state is not state:
            raise AirstepTaskFailedNoRetry(cause)
        raise AirstepTaskFailed(cause)

    def _not_done(self, task: TaskModel, try_number: int, started: str, pokes: int, result: TryResult) -> TaskOutcome:
        """A sensor's poke that was not done: past its timeout the try ends (failed, without retrying,
        or skipped with soft_fail), as in Airflow; otherwise it waits for the next poke."""
        sensor = task.sensor
        assert sensor is not None
        elapsed = seconds_between(started, _now())
        if elapsed > sensor.timeout and task.trigger is None:  # (a trigger's wait: its next poke decides)
            message = (
                f"Sensor has timed out; run duration of {elapsed} seconds exceeds the specified timeout of "
                f"{sensor.timeout}."
            )
            if sensor.soft_fail:
                skipped = self._close(try_number, started, TaskState.SKIPPED, message, result.xcoms)
                if skipped.state is TaskState.SKIPPED:  # (not if a reader ended the instance first)
                    self._task_callbacks(task, skipped.state, try_number, message, result.xcoms)
                return skipped
            error = f"AirflowSensorTimeout: {message}"
            if self._close(try_number, started, TaskState.FAILED, error, result.xcoms).state is TaskState.FAILED:
                self._task_callbacks(task, TaskState.FAILED, try_number, error, result.xcoms)
            raise AirstepTaskFailedNoRetry("AirflowSensorTimeout (the message is in its task instance record)")
        if result.until is not None:  # a time sensor: one wait, until its moment or just past its timeout
            wait = min(seconds_between(_now(), result.until), sensor.timeout - elapsed + 1)
        else:
            wait = next_poke_interval(self.payload.run.dag_id, self.task_id, sensor, started, pokes, elapsed)
        state = _between_pokes(task)
        kept = result.xcoms if sensor.mode == "poke" else None  # a rescheduled try starts afresh, as in Airflow
        usage = self._usage_so_far()
        if not self.store.await_poke(
            self.key, self.task_id, try_number, state, pokes, kept, result.until, result.watching, usage=usage
        ):
            raise AirstepTaskFailedNoRetry(f"try {try_number} outlived its task instance")
        self.usage_recorded = usage
        logger.info("sensor poked", extra={"try_number": try_number, "pokes": pokes, "wait": wait})
        lap = self.payload.lap_pokes
        poke = {POKE_DONE: False, POKE_WAIT: max(math.ceil(wait), 1), POKE_LAP: bool(lap) and pokes % lap == 0}
        return TaskOutcome(self.task_id, state, try_number, poke=poke)

    def _with_bypass(self, outcome: TaskOutcome) -> TaskOutcome:
        """`outcome` with its guards' verdicts: a guard bypasses its path when its head task is
        skipped for certain by this invocation's skips. Every skip they make certain is recorded
        first (the bypassed tasks never run to record their own)."""
        skipped = self.skips | ({self.task_id} if outcome.state is TaskState.SKIPPED else set())
        model = self.model
        certain = model.certain_skips(skipped) if skipped else frozenset()
        bypass = {guard: head in certain for guard, head in self.payload.guards.items()}
        if any(bypass.values()):
            self._record_certain_skips(model, skipped, certain)
        return replace(outcome, bypass=bypass)

    def _record_certain_skips(self, model: DagModel, skipped: set[str], certain: frozenset[str]) -> None:
        """Record each skip made certain, ending when its own runner would have settled it: just after
        its last upstream skip (the order downstream trigger rules replay), upstreams first."""
        ends = {t: ti.end for t, ti in self.store.get_task_instances(self.key, sorted(skipped)).items()}
        pending = sorted(certain - skipped, key=list(model.task_map).index)
        while pending:
            ready = [t for t in pending if all(u in ends for u in model.task_map[t].upstream)]
            for task_id in ready:
                task = model.task_map[task_id]
                arrivals = [(TaskState.SKIPPED, ends[u], Role.WORK) for u in task.upstream]
                settled_at = decide(task.trigger_rule, arrivals).settled_at or _now()
                self.store.finish_unfinished(self.key, task_id, TaskState.SKIPPED, settled_at, unstarted_only=True)
                ends[task_id] = settled_at
            pending = [t for t in pending if t not in ends]

    def _not_run(self, task: TaskModel, decision: Decision) -> TaskOutcome:
        """Settle the task as its trigger rule decided, without running it."""
        assert decision.state is not None
        at = decision.settled_at or _now()
        usage = self._usage_so_far()
        if self.store.finish_unfinished(
            self.key, self.task_id, decision.state, at, map_index=self.payload.map_index, usage=usage
        ):
            self.usage_recorded = usage
        logger.info("task not run", extra={"state": decision.state.value, "trigger_rule": task.trigger_rule.value})
        self.signal()
        return TaskOutcome(self.task_id, decision.state)

    def _external_states(self, sensor: SensorPolicy) -> dict[str, Any] | None:
        """What an ExternalTaskSensor's poke reads: the other DAG's run at this run's logical date
        (minus the sensor's delta) and its tasks' states, from the records (task code reads none)."""
        if sensor.external_dag_id is None:
            return None
        logical = self.payload.run.logical_date - timedelta(seconds=sensor.external_delta)
        found = self.store.find_run_at(sensor.external_dag_id, logical)
        task_states: dict[str, list[str | None]] = {t: [] for t in sensor.external_task_ids}
        if found is not None:  # every instance, a mapped task's each map index
            for ti in self.store.instances_of(RunKey(found.dag_id, found.run_id), list(task_states)):
                task_states[ti.task_id].append(ti.state.value if ti.state else None)
        run_state = found.state.value if found is not None else None
        return ExternalStates(sensor.external_dag_id, logical.isoformat(), run_state, task_states).to_dict()

    def _invoke_executor(self, task: TaskModel, request: TryRequest) -> TryResult:
        """Hand the request to the executor function and wait for its outcome. An executor that died
        (out of memory, killed) failed the try, as a crashed worker fails an Airflow task."""
        body, response = self._call_executor(task.queue, request.to_payload())
        if "FunctionError" in response:
            kind = body.get("errorType", "Unknown") if isinstance(body, dict) else "Unknown"
            return TryResult(TaskState.FAILED, error=f"the task's executor ended abnormally ({kind})", error_type=kind)
        return TryResult.from_dict(body)

    def _recorded(self) -> TaskInstance:
        if self.payload.map_index < 0:
            return self.store.get_task_instances(self.key, [self.task_id])[self.task_id]
        _, instances = self.store.get_mapped(self.key, self.task_id)
        return next(ti for ti in instances if ti.map_index == self.payload.map_index)

    def _signal_unless_instance(self) -> None:
        """A mapped task tells its gates once all its instances have ended (its signal step); a task
        in a mapped task group tells the gates of its instance."""
        if self.payload.map_index < 0 or self.model.task_map[self.task_id].map_group is not None:
            self.signal()

    def _gate(self, task_id: str) -> str:
        """A gate's key: the task's, or in a mapped task group's instance the task's at its map index."""
        return instance_label(task_id, self.payload.map_index)

    def _deadline(self, execution_timeout: float | None) -> float:
        """How long the try may run: its execution_timeout, or as long as this invocation allows."""
        lambda_limit = max(self.remaining_seconds - RECORDING_MARGIN_SECONDS, 0.0)
        return min(execution_timeout, lambda_limit) if execution_timeout is not None else lambda_limit

    def _close(
        self,
        try_number: int,
        started: str,
        state: TaskState,
        error: str | None = None,
        xcoms: str | None = None,
        rendered_map_index: str | None = None,
    ) -> TaskOutcome:
        """End the try. Only a try whose write won (still the running try) tells its gates that the task
        has finished; a late try, superseded by a retry or settled by a reader, changes nothing and
        reports the state on record."""
        ended = _now()
        index = self.payload.map_index
        won = self.store.end_try(
            self.key,
            self.task_id,
            try_number,
            state,
            started,
            ended,
            error,
            index,
            xcoms,
            rendered_map_index,
            self.earlier_tries,
            self.tries_before,
            self._carried(usage := self._usage_so_far()),
        )
        self.usage_recorded = usage if won else None
        if not won:
            recorded = self._recorded()
            logger.warning("late try ignored", extra={"try_number": try_number, "recorded": recorded.state})
            assert recorded.state is not None
            return TaskOutcome(self.task_id, recorded.state, recorded.try_number)
        if state is TaskState.SUCCESS and self.model.task_map[self.task_id].outlets:
            self._update_assets(try_number, ended)
        if state in FINISHED:
            self._signal_unless_instance()
            self._release_pool(self.task_id, index)
        logger.info(  # the dashboard's task failures and duration percentiles are read from this line
            TRY_ENDED,
            extra={
                "try_number": try_number,
                "map_index": index,
                "state": state.value,
                "duration": seconds_between(started, ended),
            },
        )
        return TaskOutcome(self.task_id, state, try_number)

    def _usage_so_far(self) -> LambdaUsage | None:
        """This invocation's Lambda usage so far, for the try's record to carry (None: not metered)."""
        return self.meter.total() if self.meter is not None else None

    def _carried(self, usage: LambdaUsage | None) -> LambdaUsage | None:
        """`usage` and the instance's invocations' before this one (its record is written whole)."""
        if usage is None:
            return None
        return LambdaUsage(usage.requests + self.usage_before.requests, usage.mb_ms + self.usage_before.mb_ms)

    def _settle(
        self, model: DagModel, task_ids: list[str], found: dict[str, TaskInstance], map_index: int = -1
    ) -> dict[str, TaskInstance]:
        """`found` completed for task instances (at `map_index`) whose steps have all run: one still
        marked running (or never recorded) had a try that timed out or crashed without reporting, and
        is failed now by its first reader; one never recorded whose trigger rule would not have run it
        (its runner failed before deciding) is settled as that rule says, as Airflow's scheduler does."""
        tasks = model.task_map
        for task_id in task_ids:
            ti = found.get(task_id)
            if ti is not None and ti.state in FINISHED:
                continue
            if map_index < 0 and (settled := self._settled_unbegun(model, task_id, found)) is not None:
                found[task_id] = settled
                continue
            timeout = tasks[task_id].execution_timeout
            limit = f"its execution_timeout ({timeout:g} s)" if timeout else "the 900 s Lambda limit"
            message = (
                "the try ended without reporting a result: it ran past "
                f"{limit} or its Lambda crashed (out of memory?); see the execution history"
                if ti is not None
                else NEVER_STARTED
            )
            now = _now()
            self.store.finish_unfinished(self.key, task_id, TaskState.FAILED, now, message, map_index=map_index)
            self._release_pool(task_id, map_index)  # its try crashed holding them
            found[task_id] = TaskInstance(
                task_id,
                map_index,
                TaskState.FAILED,
                ti.try_number if ti else 0,
                ti.start if ti else None,
                now,
                error=message,
            )
        return found

    def _settled_unbegun(self, model: DagModel, task_id: str, found: dict[str, TaskInstance]) -> TaskInstance | None:
        """Settle a task its runner never began (none on record in `found`) as its trigger rule says,
        when that would not have run it; None otherwise."""
        if task_id in found:
            return None
        decided = self._not_run_anyway(model, task_id, found)
        if decided is None or decided.state is None:
            return None
        at = decided.settled_at or _now()
        self.store.finish_unfinished(self.key, task_id, decided.state, at)
        self._release_pool(task_id, -1)
        return TaskInstance(task_id, -1, decided.state, 0, None, at)

    def _not_run_anyway(self, model: DagModel, task_id: str, found: dict[str, TaskInstance]) -> Decision | None:
        """How the trigger rule of a task its runner never began settles it without running (None:
        it would have run, or a mapped upstream or one still unsettled leaves it undecided)."""
        task = model.task_map[task_id]
        setups = [s for s in model.relevant_setups(task_id) if s not in task.upstream]
        relevant = [*task.upstream, *setups]
        if task.mapped or self._mapped_upstreams(model, relevant):
            return None
        upstream = self.store.get_task_instances(self.key, [u for u in relevant if u not in found])
        upstream |= {u: found[u] for u in relevant if u in found}
        decision = self._decision(task, upstream, setups)
        return decision if decision is not None and not decision.runs else None

    # -- assets -----------------------------------------------------------------------------------------
    def _update_assets(self, try_number: int, ended: str) -> None:
        """The task's try succeeded: each asset in its outlets is updated (an event, queued for the
        DAGs scheduled on it), once however often this is called for the same try."""
        due: list[str] = []
        run, index = self.payload.run, self.payload.map_index
        for event in assets.task_events(self.model, self.task_id, run, index, try_number, ended):
            queued = assets.record(self.store, event)
            logger.info("asset updated", extra={"asset": event.name, "consumers": queued})
            due += queued
        assets.announce(due)

    # -- pools ------------------------------------------------------------------------------------------
    def acquire(self) -> dict[str, Any]:
        """A pooled task instance's slots (its run's, for max_active_tasks, then its pool's): taken
        now (its acquire state released), or waited for (its token stored; nothing runs). An
        instance that will not run takes none, as in Airflow; a pool it cannot use fails it, saying
        why."""
        task = self.model.task_map[self.task_id]
        claims = pooling.claims(self.model, task, self.payload.run)
        assert claims and self.payload.token is not None
        token, index = self.payload.token, self.payload.map_index
        if not self._needs_slots(task):
            self._release(self.task_id, token)
            return {TASK_ID: self.task_id, "pool": claims[-1].pool, "taken": None}
        holder = pooling.holder_id(self.payload.run, self.task_id, index)
        arn = self.payload.execution or ""
        taken, claim = pooling.acquire(self.store, self.sfn, claims, holder, token, arn)
        if taken in (Taken.MISSING, Taken.TOO_BIG):
            message = pooling.refusal(claim, taken)
            self.store.finish_unfinished(self.key, self.task_id, TaskState.FAILED, _now(), message, map_index=index)
            pooling.fail_token(self.sfn, token, message)
        logger.info("pool slots", extra={"pool": claim.pool, "slots": claim.slots, "taken": taken.value})
        return {TASK_ID: self.task_id, "pool": claim.pool, "taken": taken.value}

    def _needs_slots(self, task: TaskModel) -> bool:
        """Whether the instance is to run a try: not finished (a clear may have kept it), and (unless
        its expand decided it) its trigger rule says it runs."""
        index = self.payload.map_index
        if (index >= 0 and task.map_group is None) or not task.upstream:
            own = self.store.get_task_instances(self.key, [self.task_id], index).get(self.task_id)
            return own is None or own.state not in FINISHED
        model = self.model
        own, upstream, mapped, indirect_setups = self._read_upstreams(model, task)
        if own is not None and own.state in FINISHED:
            return False
        if own is None and self._skipped_into_group(model, task):
            return False
        decision = self._decision(task, upstream, indirect_setups, mapped)
        return decision is None or decision.runs

    def _release_pool(self, task_id: str, map_index: int) -> None:
        """The instance has ended: give its pool slots back (starting the tasks waiting for them)."""
        claims = pooling.claims(self.model, self.model.task_map[task_id], self.payload.run)
        holder = pooling.holder_id(self.payload.run, task_id, map_index)
        if claims and holder not in self.released:  # once per invocation: a try's end, then its run
            pooling.release(self.store, self.sfn, [claim.pool for claim in claims], holder)
            self.released.add(holder)

    def _release_run_pools(self, model: DagModel) -> None:
        """The run has ended: whatever slots its instances still hold go back."""
        if model.max_active_tasks is not None or any(t.pool is not None for t in model.tasks):
            pooling.release_run(self.store, self.sfn, model, self.payload.run)

    # -- gates --------------------------------------------------------------------------------------
    def hold_at_gate(self) -> dict[str, Any]:
        assert self.payload.token is not None
        usage = self._usage_so_far()
        status = self.store.gate_register(
            self.key, self._gate(self.task_id), self.payload.token, list(self.payload.wait_for), usage
        )
        self.usage_recorded = usage
        opens = self._opens(self.task_id, status)
        if opens:
            self._release(self.task_id, status.token)
        return {"task_id": self.task_id, "open": opens}

    def signal(self) -> None:
        """Tell each gated downstream that this task has ended; open the gates that are now complete,
        or (an early task's) whose trigger rule the arrivals decide."""
        for down in self.payload.signal:
            status = self.store.gate_arrive(self.key, self._gate(down), self.task_id)
            if self._opens(down, status):
                self._release(down, status.token)

    def _opens(self, task_id: str, status: GateStatus) -> bool:
        """Whether a gate opens: all its upstreams arrived, or (an early task's) those that have
        ended decide its trigger rule."""
        if status.open:
            return True
        model = self.model
        if status.token is None or task_id not in model.early_tasks or not status.arrived:
            return False
        found = self.store.get_task_instances(self.key, sorted(status.arrived))
        return self._decision(model.task_map[task_id], found) is not None

    def _decision(
        self,
        task: TaskModel,
        upstream: dict[str, TaskInstance],
        indirect_setups: Sequence[str] = (),
        mapped: dict[str, list[TaskInstance]] | None = None,
    ) -> Decision | None:
        """The task's trigger rule decided on the upstream instances that have ended (those not in
        `upstream`, or not finished, are pending; each instance of a mapped upstream arrives on its
        own, as in Airflow); None while they do not decide it."""
        tasks = self.model.task_map
        mapped = mapped or {}
        ended = {u: ti for u, ti in upstream.items() if ti.state in FINISHED}
        roles = [(u, Role.SETUP if tasks[u].is_setup else Role.WORK) for u in task.upstream]
        arrivals = []
        for u, role in [*roles, *((s, Role.INDIRECT_SETUP) for s in indirect_setups)]:
            if u in mapped:
                arrivals += [(ti.state, ti.end, role) for ti in mapped[u]]
            elif u in ended:
                arrivals.append((ended[u].state, ended[u].end, role))
        pending = sum(u not in ended and u not in mapped for u in task.upstream)
        return decide(task.trigger_rule, arrivals, pending=pending)  # type: ignore[arg-type]

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
        """A try ended in a way the runner could not record (timeout, crash): fail the task instance.
        One the runner never began, whose trigger rule would not have run it, is settled as the rule
        says instead (as in `_settle`)."""
        message = _caught_message(self.payload.caught)
        index = self.payload.map_index
        if index < 0 and self.task_id not in self.model.map_groups and not self.model.task_map[self.task_id].mapped:
            found = self.store.get_task_instances(self.key, [self.task_id])
            settled = self._settled_unbegun(self.model, self.task_id, found)
            if settled is not None:
                self.signal()
                return TaskOutcome(self.task_id, settled.state)
            # (a States.Timeout here is the runner's, not the try's; a pool's refusal says why itself)
            if self.task_id not in found and self.payload.caught.get("Error") != POOL_UNAVAILABLE:
                message = f"{NEVER_STARTED} ({redact(self.payload.caught.get('Error', 'States.TaskFailed'))})"
        # a mapped task group's expand step failed: every task in the group fails with it
        for task_id in self.model.map_groups.get(self.task_id, (self.task_id,)):
            if self.store.finish_unfinished(self.key, task_id, TaskState.FAILED, _now(), message, map_index=index):
                logger.warning("task failed outside the runner", extra={"error": message})
            self._release_pool(task_id, index)
        self.signal()
        return TaskOutcome(self.task_id, TaskState.FAILED, map_index=index)

    # -- the run's verdict ------------------------------------------------------------------------
    def finalize(self) -> RunOutcome:
        """Airflow's rule: a run fails if any leaf task failed or is upstream_failed (a teardown counts
        only with on_failure_fail_dagrun)."""
        model = self.model
        listed = self.store.task_instances(self.key)  # one read of every instance, without values
        expanded = {
            t.task_id: tis for t in model.tasks if t.mapped and (tis := self._instances(t.task_id, listed)) is not None
        }
        recorded = {ti.task_id: ti for ti in listed if ti.map_index < 0}
        instances = self._settle(model, [t for t in model.task_map if t not in expanded], recorded)
        every = {t: [ti] for t, ti in instances.items()} | expanded
        leaves = model.run_state_leaves()
        failed_leaves = [t for t in leaves if any(ti.state in FAILED_STATES for ti in every[t])]
        state = RunState.FAILED if failed_leaves else RunState.SUCCESS
        self._release_run_pools(model)
        if self.store.finish_run(self.key, state, _now(), self.payload.execution):  # once, not per retry
            self._run_callbacks(model, state, [ti for tis in every.values() for ti in tis])
        failed = sorted({t for t, tis in every.items() if any(ti.state is TaskState.FAILED for ti in tis)})
        cause = (
            f"failed tasks: {', '.join(failed)}"
            if failed
            else (f"unfinished tasks: {', '.join(failed_leaves)}" if failed_leaves else "")
        )
        logger.info("run finished", extra={"state": state.value})
        return RunOutcome(state, cause, failed)

    def time_out(self) -> dict[str, Any]:
        """Airflow's dagrun_timeout, once Step Functions has ended the execution TIMED_OUT: every
        unfinished task instance (running, waiting, or never started) is skipped, so a try still
        running records nothing when it ends, and the DAG's failure callback runs with reason
        "timed_out", about the instance that started last."""
        model = self.model
        record = self.store.get_run(self.key)
        if record is not None and record.clear_number != self.key.clear_number:  # cleared since: not ours
            return {"ended": []}
        listed = self.store.task_instances(self.key)
        now = _now()
        unfinished = [ti for ti in listed if ti.state not in FINISHED]
        for ti in unfinished:
            self.store.finish_unfinished(self.key, ti.task_id, TaskState.SKIPPED, now, map_index=ti.map_index)
        recorded = {ti.task_id for ti in listed}
        never = [t.task_id for t in model.tasks if t.task_id not in recorded]
        for task_id in never:
            self.store.finish_unfinished(self.key, task_id, TaskState.SKIPPED, now)
        self.store.finish_run(self.key, RunState.FAILED, now, self.payload.execution)
        # pool slots stay held: a try may run on for Lambda's 15 minutes (the reconciler frees them then)
        about = max(unfinished, key=lambda ti: (ti.start or "", ti.task_id)) if unfinished else None
        self._run_callbacks(model, RunState.FAILED, listed, reason="timed_out", about=about)
        ended = sorted({ti.label for ti in unfinished} | set(never))
        logger.info("run timed out", extra={"unfinished": len(ended)})
        return {"ended": ended}

    def _task_callbacks(
        self, task: TaskModel, state: TaskState, try_number: int, error: str | None, xcoms: str | None
    ) -> None:
        """The task's callbacks for an outcome decided here, not in its try's code (a trigger's, a
        sensor's timeout), on the executor as for any try; a callback cannot change the outcome."""
        name = OUTCOME_CALLBACK.get(state)
        if name is None or name not in task.callbacks:
            return
        reason = "" if state is TaskState.SUCCESS else state.value
        request = RunCallbackRequest(
            self.payload.dag,
            self.payload.run,
            name,
            reason,
            task.task_id,
            try_number,
            of_task=True,
            error=error,
            xcoms=xcoms,
            map_index=self.payload.map_index,
        )
        self._invoke_callbacks(request, task.queue)

    def _run_callbacks(
        self,
        model: DagModel,
        state: RunState,
        instances: list[TaskInstance],
        reason: str | None = None,
        about: TaskInstance | None = None,
    ) -> None:
        """The DAG's callback for the run's outcome, on the executor (user code never runs here), with
        Airflow's reason and task instance: the last failed one, or the last that succeeded. A callback's
        failure is the executor's to log; the run's outcome is already recorded."""
        name = "on_success_callback" if state is RunState.SUCCESS else "on_failure_callback"
        if name not in model.callbacks:
            return
        wanted = TaskState.SUCCESS if state is RunState.SUCCESS else TaskState.FAILED
        candidates = [ti for ti in instances if ti.state is wanted]
        if about is None and not instances:
            about = TaskInstance(model.tasks[0].task_id, -1, None, 0)
        about = about or max(candidates or instances, key=lambda ti: (ti.end or "", ti.task_id))
        reason = reason or (state.value if state is RunState.SUCCESS else "task_failure")  # Airflow's reasons
        request = RunCallbackRequest(
            self.payload.dag, self.payload.run, name, reason, about.task_id, max(about.try_number, 1)
        )
        self._invoke_callbacks(request, DEFAULT_QUEUE)

    def _call_executor(self, queue: str, payload: bytes) -> tuple[Any, dict[str, Any]]:
        """Invoke the executor of `queue` and wait: its answer, the response, and its usage metered (as
        it reports it, or, if it ended abnormally, the call's time at the executor's configured memory)."""
        called = time.perf_counter()
        response = client("lambda").invoke(
            FunctionName=executor_function(os.environ[EXECUTOR_FUNCTION_ENV], queue), Payload=payload
        )
        body = json.loads(response["Payload"].read() or b"null")
        if self.meter is not None:
            reported = body.get(USAGE) if isinstance(body, dict) else None
            if not self.meter.waited_on.add_reported(reported):
                memory = int(os.environ.get(EXECUTOR_MEMORY_ENV, DEFAULT_EXECUTOR_MEMORY_MB))
                self.meter.waited_on.add((time.perf_counter() - called) * 1000, memory)
        return body, response

    # -- deadlines --------------------------------------------------------------------------------------
    def arm_deadlines(self) -> dict[str, Any]:
        """The run's first step: arm its deadline alerts. Never fails the run: a deadline that
        cannot be armed is logged and counted (DeadlinesNotArmed), and the run goes on."""
        try:
            assert self.function_arn is not None
            armed = deadline_alerts.arm(
                self.store,
                client("scheduler"),
                self.model.deadlines,
                self.payload.dag,
                self.payload.run,
                self.payload.execution,
                ":".join(self.function_arn.split(":")[:7]),  # (unqualified: the scheduler role's)
                datetime.now(UTC),
            )
        except Exception as exc:  # noqa: BLE001
            logger.error("deadlines not armed", extra={"error": redact(f"{type(exc).__name__}: {exc}")})
            metrics.add_metric(name=deadline_alerts.NOT_ARMED_METRIC, unit=MetricUnit.Count, value=1)
            metrics.flush_metrics()
            return {"armed": []}
        return {"armed": armed}

    def decide_deadline(self, alert: int) -> dict[str, Any]:
        """A deadline's moment has come: met if the run had succeeded by then, else missed (counted
        once, its callback run on the executor). A callback that could not be run raises: the
        schedule's delivery is retried, and runs it then."""
        decision = deadline_alerts.decide(self.store, self.payload.run, alert)
        found = decision.deadline
        answer = {"alert": alert, "outcome": decision.outcome, "deadline": found.deadline if found else None}
        if decision.outcome != deadline_alerts.MISSED or found is None:
            return answer
        name = self.model.deadlines[alert].name
        if decision.first:
            extra = {"alert": alert, "alert_name": name, "deadline": found.deadline}
            logger.warning(deadline_alerts.DEADLINE_MISSED, extra=extra)
            metrics.add_metric(name=deadline_alerts.MISSED_METRIC, unit=MetricUnit.Count, value=1)
            metrics.flush_metrics()
        context = deadline_alerts.callback_context(self.store.get_run(self.key), self.payload.run, found)
        request = DeadlineCallbackRequest(self.payload.dag, self.payload.run, alert, context)
        body, response = self._call_executor(DEFAULT_QUEUE, json.dumps(request.to_event()).encode())
        if "FunctionError" in response:  # (what the callback itself raised is logged, as in Airflow)
            raise RuntimeError(f"the deadline's callback did not run: its executor ended abnormally ({body})")
        self.store.mark_called(self.key, alert)
        return {**answer, "name": name}

    def _invoke_callbacks(self, request: RunCallbackRequest, queue: str) -> None:
        try:
            self._call_executor(queue, json.dumps(request.to_event()).encode())
        except Exception as exc:  # noqa: BLE001 - the outcome is recorded; a callback cannot change it
            logger.warning("callbacks not run", extra={"callback": request.callback, "error": redact(str(exc))})


def _container_deadline(task: TaskModel) -> float:
    """How long a try in a container may run: its execution_timeout, or as long as the run."""
    return task.execution_timeout if task.execution_timeout is not None else NO_LIMIT_SECONDS


def _between_pokes(task: TaskModel) -> TaskState:
    """What a sensor's instance shows while it waits: Airflow's reschedule mode frees its slot."""
    assert task.sensor is not None
    return TaskState.UP_FOR_RESCHEDULE if task.sensor.mode == "reschedule" else TaskState.RUNNING


def next_poke_interval(
    dag_id: str, task_id: str, sensor: SensorPolicy, started: str, pokes: int, elapsed: float
) -> float:
    """Airflow's BaseSensorOperator._get_next_poke_interval: `poke_interval`, or with
    exponential_backoff a jittered doubling (never past the timeout, nor past max_wait)."""
    if not sensor.exponential_backoff:
        return sensor.poke_interval
    min_backoff = max(int(sensor.poke_interval * (2 ** (pokes - 2))), 1)
    digest = hashlib.sha1(f"{dag_id}#{task_id}#{started}#{pokes}".encode(), usedforsecurity=False).hexdigest()
    delay = min(min_backoff + int(digest, 16) % min_backoff, timedelta.max.total_seconds() - 1)
    interval = min(sensor.timeout - int(elapsed), delay)
    return min(sensor.max_wait, interval) if sensor.max_wait else interval


def _upstream_xcoms(
    model: DagModel, upstream: dict[str, TaskInstance], mapped: dict[str, list[TaskInstance]]
) -> dict[str, Any]:
    """What the executor gets to pull: each upstream's XComs; a mapped upstream's as a list by map
    index (empty for one that never expanded: skipped, or settled as a whole)."""
    xcoms: dict[str, Any] = {task_id: ti.xcoms for task_id, ti in upstream.items()}
    for task_id, ti in upstream.items():
        task = model.task_map[task_id]
        if task.mapped and ti.map_index < 0:
            xcoms[task_id] = _never_expanded(task)
    return xcoms | {task_id: [ti.xcoms for ti in instances] for task_id, instances in mapped.items()}


def _never_expanded(task: TaskModel) -> list[Any] | None:
    """What a pull of a mapped task that never expanded gives: [], or, as Airflow, None for a task in
    a mapped task group."""
    return None if task.map_group else []


def _history_message(exc: BaseException, where: str) -> str:
    """What Step Functions' history keeps of a failure: its type, never its message (a message may hold
    a secret the masker does not know)."""
    return f"{type(exc).__name__} (the message is in {where})"


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
    if name == POOL_UNAVAILABLE and cause:  # the runner's own words (pooling.refusal)
        return cause
    return redact(f"{name}: {cause}" if cause else name)


def _checked_skips(model: DagModel, task_id: str, result: TryResult) -> TryResult:
    """A try may skip only tasks downstream of its own (task code names them; the run's records are
    not task code's to write): anything else fails the try, without retrying."""
    if not result.skip:
        return result
    stray = sorted(set(result.skip) - model.relatives(task_id, upstream=False))
    if not stray:
        return result
    error = f"task {task_id!r} may skip only tasks downstream of it; it asked to skip {stray}"
    return TryResult(TaskState.FAILED, result.xcoms, error, "DownstreamTasksSkipped", final=True)
