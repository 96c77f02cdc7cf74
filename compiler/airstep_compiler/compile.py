"""compile_dag(): graph model -> one Standard state machine definition, deterministic to the byte."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from airstep.model import DagModel, TaskModel
from airstep_compiler.limits import Limits, check_limits, estimate_run
from airstep_compiler.plan import Block, Sequence, Step, build_plan
from airstep_compiler.states import RETRYABLE_ERRORS, InitRun, LambdaTask, ParallelBlock

FUNCTION_PLACEHOLDER = "${TaskRunnerFunctionName}"
LAMBDA_MAX_TIMEOUT_SECONDS = 900
GATE_TIMEOUT_SECONDS = 365 * 24 * 3600  # a Standard execution's lifetime
AIRFLOW_MAX_RETRY_DELAY_SECONDS = 86400  # Airflow's [core] max_task_retry_delay
MAX_STATE_NAME = 80
MAP_CHUNK = 40  # inline Map runs at most 40 iterations at once
MAP_MIN_TASKS = 8  # smaller parallel blocks stay explicit branches, one state per task
_SUFFIXES = ("@wait", "@failed")
_BASE_NAME_LIMIT = MAX_STATE_NAME - max(map(len, _SUFFIXES))

START, FINALIZE, CHECK, FAILED, SUCCEEDED = (
    "dagrun@start",
    "dagrun@finalize",
    "dagrun@check",
    "dagrun@failed",
    "dagrun@succeeded",
)


class CompileError(Exception):
    """The DAG cannot become a state machine; `limit` names the quota or rule it breaks."""

    def __init__(self, message: str, *, limit: str, file: str = "", line: int = 0) -> None:
        self.message = message
        self.limit = limit
        self.file = file
        self.line = line
        super().__init__(f"{file}:{line}: {message}" if file else message)


@dataclass(frozen=True, slots=True)
class DagSource:
    """Where tasks load the DAG from: a local path or s3:// URI, and the exact version to load."""

    uri: str
    version: str


@dataclass(frozen=True, slots=True)
class CompileOptions:
    function_name: str = FUNCTION_PLACEHOLDER
    # Local iteration: every retry waits 1 s instead of the DAG's retry_delay.
    fast_retries: bool = False
    check_limits: bool = True
    # Parallel blocks of at least this many single tasks are emitted as inline Maps (compact).
    map_min_tasks: int = MAP_MIN_TASKS


@dataclass(frozen=True, slots=True)
class CompiledDag:
    dag_id: str
    definition: dict[str, Any]
    state_count: int
    task_count: int
    gate_count: int
    transitions_per_run: int
    history_events_per_run: int
    history_events_worst_case: int

    @property
    def definition_json(self) -> str:
        """What is deployed: compact, key order fixed by construction."""
        return json.dumps(self.definition, separators=(",", ":"), ensure_ascii=False)

    @property
    def definition_bytes(self) -> int:
        return len(self.definition_json.encode("utf-8"))

    def pretty_json(self) -> str:
        return json.dumps(self.definition, indent=2, ensure_ascii=False) + "\n"


def state_name(task_id: str) -> str:
    """A task's state name: its id, or a hashed stem when the id is too long for a state name."""
    if len(task_id) <= _BASE_NAME_LIMIT:
        return task_id
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:8]
    return f"{task_id[: _BASE_NAME_LIMIT - 9]}@{digest}"


def compile_dag(model: DagModel, source: DagSource, options: CompileOptions = CompileOptions()) -> CompiledDag:
    """Compile one DAG. Raises CompileError naming the file, line and limit when it cannot."""
    plan = build_plan(model)
    emitter = _Emitter(model, options, plan.signals)
    top: dict[str, dict[str, Any]] = {}
    entry = emitter.emit(plan.root, top, FINALIZE)
    states: dict[str, dict[str, Any]] = {
        START: InitRun({"dag_id": model.dag_id, "file": source.uri, "version": source.version}, entry).to_asl(),
        **top,
        FINALIZE: LambdaTask(
            function_name=options.function_name,
            payload={"action": "finalize", "ctx.$": "$"},
            next=CHECK,
            timeout_seconds=LAMBDA_MAX_TIMEOUT_SECONDS,
            result_selector={"state.$": "$.Payload.state", "cause.$": "$.Payload.cause"},
            result_path="$.result",
        ).to_asl(),
        CHECK: {
            "Type": "Choice",
            "Choices": [{"Variable": "$.result.state", "StringEquals": "failed", "Next": FAILED}],
            "Default": SUCCEEDED,
        },
        FAILED: {"Type": "Fail", "Error": "DagRunFailed", "CausePath": "$.result.cause"},
        SUCCEEDED: {"Type": "Succeed"},
    }
    comment = f"airstep DAG {model.dag_id} ({len(model.tasks)} tasks) from {source.uri} {source.version}"
    definition = {"Comment": comment, "StartAt": START, "States": states}
    estimate = estimate_run(definition)
    compiled = CompiledDag(
        dag_id=model.dag_id,
        definition=definition,
        state_count=estimate.states,
        task_count=len(model.tasks),
        gate_count=emitter.gates,
        transitions_per_run=estimate.transitions,
        history_events_per_run=estimate.events,
        history_events_worst_case=estimate.events_worst_case(model),
    )
    if options.check_limits:
        problem = check_limits(compiled, Limits())
        if problem:
            raise CompileError(
                f"DAG {model.dag_id!r}: {problem.message}", limit=problem.limit, file=model.file, line=model.line
            )
    return compiled


class _Emitter:
    def __init__(self, model: DagModel, options: CompileOptions, signals: dict[str, list[str]]) -> None:
        self.model = model
        self.tasks = model.task_map
        self.options = options
        self.signals = signals
        self.parallel_count = 0
        self.gates = 0

    def emit(self, block: Block, states: dict[str, dict[str, Any]], next_name: str | None) -> str:
        """Add `block`'s states to `states`, leaving to `next_name` (None: end); return the entry."""
        if isinstance(block, Step):
            return self._emit_step(block, states, next_name)
        if isinstance(block, Sequence):
            entries: list[tuple[Block, dict[str, dict[str, Any]]]] = []
            follow = next_name
            for item in reversed(block.items):
                part: dict[str, dict[str, Any]] = {}
                follow = self.emit(item, part, follow)
                entries.append((item, part))
            for _, part in reversed(entries):
                states.update(part)
            assert follow is not None
            return follow
        self.parallel_count += 1
        name = f"parallel@{self.parallel_count}"
        if len(block.branches) >= self.options.map_min_tasks and all(isinstance(b, Step) for b in block.branches):
            states[name] = ParallelBlock(self._task_maps(name, block.branches), next_name).to_asl()  # type: ignore[arg-type]
            return name
        branches = []
        for branch in block.branches:
            branch_states: dict[str, dict[str, Any]] = {}
            start = self.emit(branch, branch_states, None)
            branches.append({"StartAt": start, "States": branch_states})
        states[name] = ParallelBlock(branches, next_name).to_asl()
        return name

    def _emit_step(self, step: Step, states: dict[str, dict[str, Any]], next_name: str | None) -> str:
        task = self.tasks[step.task_id]
        run = state_name(task.task_id)
        failed = run + "@failed"
        signal = self.signals.get(task.task_id, [])
        entry = run
        if step.gate:
            self.gates += 1
            entry = run + "@wait"
            states[entry] = self._gate_state({"task_id": task.task_id, "wait_for": list(step.gate)}, run)
        run_payload: dict[str, Any] = {"task_id": task.task_id, "ctx.$": "$"}
        if signal:
            run_payload["signal"] = signal
        states[run] = self._run_state(run_payload, next_name, self._retriers(task), self._timeout(task), failed)
        if signal:
            states[failed] = self._fail_state({"task_id": task.task_id, "signal": signal, "ctx.$": "$"}, next_name)
        else:
            states[failed] = {"Type": "Pass", **({"End": True} if next_name is None else {"Next": next_name})}
        return entry

    def _task_maps(self, name: str, steps: tuple[Step, ...]) -> list[dict[str, Any]]:
        """Many parallel tasks as inline Maps: tasks with one retry/timeout policy share an item
        processor written once; at most MAP_CHUNK items per Map, so inline Map's 40-way concurrency
        never delays a task. Each branch: a Pass that sets the items, then the Map."""
        groups: dict[str, list[Step]] = {}
        policy: dict[str, tuple[list[dict[str, Any]], int]] = {}
        for step in steps:
            task = self.tasks[step.task_id]
            rules = (self._retriers(task), self._timeout(task))
            key = json.dumps(rules, sort_keys=True)
            groups.setdefault(key, []).append(step)
            policy[key] = rules
        branches = []
        for key, members in groups.items():
            for start in range(0, len(members), MAP_CHUNK):
                chunk = members[start : start + MAP_CHUNK]
                prefix = f"{name}@{len(branches) + 1}"
                items = []
                for step in chunk:
                    item: dict[str, Any] = {"task_id": step.task_id, "signal": self.signals.get(step.task_id, [])}
                    if step.gate:
                        item["wait_for"] = list(step.gate)
                        self.gates += 1
                    items.append(item)
                retriers, timeout = policy[key]
                branches.append(
                    {
                        "StartAt": f"{prefix}@items",
                        "States": {
                            f"{prefix}@items": {
                                "Type": "Pass",
                                "Result": items,
                                "ResultPath": "$.items",
                                "Next": f"{prefix}@tasks",
                            },
                            f"{prefix}@tasks": {
                                "Type": "Map",
                                "ItemsPath": "$.items",
                                "ItemSelector": {"item.$": "$$.Map.Item.Value", "dag.$": "$.dag", "run.$": "$.run"},
                                "MaxConcurrency": 0,
                                "ItemProcessor": self._item_processor(
                                    prefix, retriers, timeout, gated=any("wait_for" in item for item in items)
                                ),
                                "ResultPath": None,
                                "End": True,
                            },
                        },
                    }
                )
        return branches

    def _item_processor(
        self, prefix: str, retriers: list[dict[str, Any]], timeout: int, *, gated: bool
    ) -> dict[str, Any]:
        """One task per Map item (`$.item`: task_id, signal, wait_for?): gate if needed, run, catch.
        A Map none of whose items waits has no Choice and no gate (one state transition per item)."""
        choice, gate, run, failed = f"{prefix}@gated", f"{prefix}@wait", f"{prefix}@run", f"{prefix}@failed"
        item_ref = {"task_id.$": "$.item.task_id", "signal.$": "$.item.signal", "ctx.$": "$"}
        states: dict[str, Any] = {}
        if gated:
            states[choice] = {
                "Type": "Choice",
                "Choices": [{"Variable": "$.item.wait_for", "IsPresent": True, "Next": gate}],
                "Default": run,
            }
            states[gate] = self._gate_state({"task_id.$": "$.item.task_id", "wait_for.$": "$.item.wait_for"}, run)
        states[run] = self._run_state(item_ref, None, retriers, timeout, failed)
        states[failed] = self._fail_state(item_ref, None)
        return {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": choice if gated else run, "States": states}

    def _gate_state(self, task_fields: dict[str, Any], next_name: str) -> dict[str, Any]:
        """Waits for the task token that the gate's last upstream releases."""
        return LambdaTask(
            function_name=self.options.function_name,
            payload={"action": "gate", **task_fields, "token.$": "$$.Task.Token", "ctx.$": "$"},
            next=next_name,
            timeout_seconds=GATE_TIMEOUT_SECONDS,
            wait_for_token=True,
        ).to_asl()

    def _run_state(
        self,
        payload: dict[str, Any],
        next_name: str | None,
        retriers: list[dict[str, Any]],
        timeout: int,
        failed: str,
    ) -> dict[str, Any]:
        """Runs one try; the task's own Retry, its timeout, and every error caught into `failed`."""
        return LambdaTask(
            function_name=self.options.function_name,
            payload=payload,
            next=next_name,
            timeout_seconds=timeout,
            retriers=retriers,
            catch_next=failed,
        ).to_asl()

    def _fail_state(self, payload_fields: dict[str, Any], next_name: str | None) -> dict[str, Any]:
        """Where a task's last failed try leads when gated tasks wait on it: records a try that timed
        out or crashed and signals those gates. Without gates waiting, a Pass leads on instead and the
        failure is recorded by the runner or by the task's first reader (a downstream or finalize)."""
        return LambdaTask(
            function_name=self.options.function_name,
            payload={"action": "fail", **payload_fields},
            next=next_name,
            timeout_seconds=LAMBDA_MAX_TIMEOUT_SECONDS,
            result_selector={"state.$": "$.Payload.state"},
            result_path="$.error",
        ).to_asl()

    def _timeout(self, task: TaskModel) -> int:
        if task.execution_timeout is None:
            return LAMBDA_MAX_TIMEOUT_SECONDS
        seconds = max(1, math.ceil(task.execution_timeout))
        if seconds > LAMBDA_MAX_TIMEOUT_SECONDS:
            raise CompileError(
                f"task {task.task_id!r}: execution_timeout of {seconds} s exceeds the "
                f"{LAMBDA_MAX_TIMEOUT_SECONDS} s that a Lambda task can run",
                limit="lambda-timeout",
                file=self.model.file,
                line=task.line,
            )
        return seconds

    def _retriers(self, task: TaskModel) -> list[dict[str, Any]]:
        """Airflow's retries as a Retry: try n+1 waits retry_delay * backoff**(n-1), capped."""
        if task.retries == 0:
            return []
        if self.options.fast_retries:
            return [
                {"ErrorEquals": RETRYABLE_ERRORS, "IntervalSeconds": 1, "MaxAttempts": task.retries, "BackoffRate": 1}
            ]
        retrier: dict[str, Any] = {
            "ErrorEquals": RETRYABLE_ERRORS,
            "IntervalSeconds": max(1, math.ceil(task.retry_delay)),
            "MaxAttempts": task.retries,
            "BackoffRate": task.retry_exponential_backoff or 1,
        }
        if task.retry_exponential_backoff:
            cap = task.max_retry_delay if task.max_retry_delay is not None else AIRFLOW_MAX_RETRY_DELAY_SECONDS
            retrier["MaxDelaySeconds"] = max(1, math.ceil(cap))
        return [retrier]
