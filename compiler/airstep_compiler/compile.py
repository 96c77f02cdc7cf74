"""compile_dag(): graph model -> one Standard state machine definition, deterministic to the byte.

The payloads, state data and helper-state names the definition carries are airstep.contract's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from airstep import containers, contract
from airstep.containers import ContainerTarget
from airstep.contract import DagRef, MapStateNames, failed_state
from airstep.integration import Integration, Poll
from airstep.model import DagModel, SensorPolicy, TaskModel
from airstep.states import RunState, TaskState
from airstep_compiler.iam import POLICY_CHARS, dag_policy, largest, policy_chars
from airstep_compiler.limits import STATE_NAME_CHARS, LimitProblem, Limits, RunCost, check_limits
from airstep_compiler.plan import Block, Sequence, Step, build_plan, group_model, with_groups_as_tasks
from airstep_compiler.states import (
    DISTRIBUTED_PROCESSOR,
    INLINE_PROCESSOR,
    Branch,
    ChoiceRule,
    ChoiceState,
    DistributedMapState,
    FailState,
    InlineMapState,
    LambdaTask,
    NextItemRule,
    ParallelState,
    PassState,
    PauseState,
    PresentAndTrueRule,
    Retrier,
    ServiceTask,
    State,
    SucceedState,
    UntilRule,
    WaitState,
    WhileRule,
)

FUNCTION_PLACEHOLDER = "${TaskRunnerFunctionName}"
# `airstep compile` without an environment: where a container try would run, as placeholders
CONTAINER_PLACEHOLDER = ContainerTarget("${ContainerCluster}", "${ContainerTaskDefinition}", ("${ContainerSubnet}",))
LAMBDA_MAX_TIMEOUT_SECONDS = 900
# The runner stops a try at its execution_timeout and records it; the state's own timeout, this much
# later, is the backstop for a runner that cannot (a crash, a lost invocation).
RECORDING_MARGIN_SECONDS = 60
GATE_TIMEOUT_SECONDS = 365 * 24 * 3600  # a Standard execution's lifetime
AIRFLOW_MAX_RETRY_DELAY_SECONDS = 86400  # Airflow's [core] max_task_retry_delay
MAP_CHUNK = contract.INLINE_MAP_MAX_ITEMS  # inline Map runs at most 40 iterations at once
# Child executions a Distributed Map runs at once unless max_active_tis_per_dagrun says: each holds
# two Lambda invocations (runner and executor), so 400 leave room in the default 1,000-concurrency account.
DISTRIBUTED_MAP_CONCURRENCY = 400
MAP_MIN_TASKS = 8  # smaller parallel blocks stay explicit branches, one state per task
# A guard is one more transition on every run that takes its path: it pays only in front of paths
# whose bypass saves at least this many (docs/design.md, "Skipped paths").
MIN_GUARDED_TRANSITIONS = 3
# A mapped instance's inline Map iteration: iteration started/succeeded and its run state's five.
EVENTS_PER_MAPPED_INSTANCE = 7
# A poke that is not done: its run state (5), the Choice after it (2) and the Wait (2).
EVENTS_PER_POKE = 9
SENSOR_HISTORY_SHARE = 0.5  # of a run's history events, for its sensors' pokes together
# A describe call that finds the work still running: the call (5), counting it (2), the Choice (2), the Wait (2).
EVENTS_PER_POLL = 11
POLL_HISTORY_SHARE = 0.25  # of a run's history events, for its AWS operators' describe calls together
DESCRIBE_TIMEOUT_SECONDS = 60
DESCRIBE_RETRIER = Retrier((contract.STATES_ALL,), 2, 4, 2.0)
# A poke in a sensor's child execution: its run state (5), the Choice after it (2), the Wait (2) and
# the Choice that ends the child when its pokes are spent (2).
EVENTS_PER_CHILD_POKE = 11
SENSOR_LAP_POKES = 2_000  # the most pokes of one try in one child execution


def max_pokes(sensor: SensorPolicy) -> int:
    """The most pokes a sensor's try can make before its timeout ends it (Airflow pokes once more
    after the last wait that starts before the timeout); a time sensor's are its first poke and
    the end of its one wait."""
    if sensor.waits_for_moment:
        return 2
    if sensor.exponential_backoff:
        waited, pokes = 0.0, 1
        while waited <= sensor.timeout:
            pokes += 1
            interval = max(int(sensor.poke_interval * (2 ** (pokes - 2))), 1)  # the jitter adds up to as much
            waited += min(interval, sensor.max_wait) if sensor.max_wait else interval
        return pokes
    return int(sensor.timeout // max(sensor.poke_interval, 1)) + 2


_BASE_NAME_LIMIT = STATE_NAME_CHARS - max(map(len, contract.HELPER_SUFFIXES))


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
    """Where tasks load the DAG from (a local path or s3:// URI, and the exact version to load) and
    where the task runner reads its graph model (`models`: the base URI of the model store)."""

    uri: str
    version: str
    models: str = ""

    def model_uri(self, model: DagModel) -> str:
        return self.models + model.storage_key()


@dataclass(frozen=True, slots=True)
class CompileOptions:
    function_name: str = FUNCTION_PLACEHOLDER
    # Local iteration: every retry waits 1 s instead of the DAG's retry_delay (and a describe call's, 1 s).
    fast_retries: bool = False
    check_limits: bool = True
    limits: Limits = Limits()
    # Parallel blocks of at least this many single tasks are emitted as inline Maps (compact).
    map_min_tasks: int = MAP_MIN_TASKS
    # Every task behind a gate, not only where the DAG is not series-parallel (tests).
    gate_every_task: bool = False
    # The environment's region (None: not known): an AWS operator's region_name must be it.
    region: str | None = None
    # Where tries of tasks on the ECS executor run (None: the environment runs none)
    container: ContainerTarget | None = CONTAINER_PLACEHOLDER


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
    invocations_per_run: int = 0  # Lambda requests (runner and executor) when every task succeeds at its first try
    mapped_tasks: tuple[str, ...] = ()  # each mapped task, by id
    # each mapped task group, how many tasks it holds and the history events an inline instance writes
    mapped_groups: tuple[tuple[str, int, int], ...] = ()
    # (task_id, pokes before its timeout, pokes per child execution (0: none), a time sensor's single wait,
    # a TriggerDagRunOperator waiting for its run)
    sensors: tuple[tuple[str, int, int, bool, bool], ...] = ()
    # what the DAG's role must allow for its AWS operators' calls (None: it makes none; see iam.py)
    policy: dict[str, Any] | None = None

    def shapes(self, limits: Limits | None = None) -> list[str]:
        """What each mapped task and sensor compiled to, and what an instance or a poke costs
        (`airstep compile` prints it)."""
        limits = limits or Limits()
        return (
            [
                f"mapped task {task_id}: an expand step, then one run state per instance: up to "
                f"{contract.INLINE_MAP_MAX_ITEMS} in an inline Map (~{EVENTS_PER_MAPPED_INSTANCE} of this run's "
                f"{limits.history_events:,} history events each), more in a Distributed Map of child executions "
                f"(their own history; {DISTRIBUTED_MAP_CONCURRENCY} at once, or max_active_tis_per_dagrun); "
                "1 transition per instance either way"
                for task_id in self.mapped_tasks
            ]
            + [
                f"mapped task group {group_id}: an expand step, then each instance runs the group's "
                f"{_count(count, 'task')} (decided at its map index): up to {contract.INLINE_MAP_MAX_ITEMS} instances "
                f"in an inline Map (~{events} of this run's history events each), more in a Distributed Map of child "
                f"executions (their own history); ~{_count(count, 'transition')} per instance"
                for group_id, count, events in self.mapped_groups
            ]
            + [_sensor_shape(*sensor) for sensor in self.sensors]
        )

    @property
    def definition_json(self) -> str:
        """What is deployed: compact, key order fixed by construction."""
        return json.dumps(self.definition, separators=(",", ":"), ensure_ascii=False)

    @property
    def definition_bytes(self) -> int:
        return len(self.definition_json.encode("utf-8"))

    def pretty_json(self) -> str:
        return json.dumps(self.definition, indent=2, ensure_ascii=False) + "\n"


def state_name(task_id: str, suffix: str = "") -> str:
    """A task's state name: its id, or a hashed stem when the id is too long for a state name
    (with `suffix`, and room for the helper suffixes after it)."""
    limit = _BASE_NAME_LIMIT - len(suffix)
    if len(task_id) <= limit:
        return task_id + suffix
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:8]
    return f"{task_id[: limit - 9]}{contract.HELPER_MARK}{digest}{suffix}"


# A run's max_active_tasks slots are one DynamoDB item (400 KB), one entry per instance running: its
# DAG id, run id (up to RUN_ID_BYTES), task id and map index, and about 30 bytes more.
RUN_POOL_ITEM_BYTES = 350_000
RUN_ID_BYTES = 100


def _check_run_pool_size(model: DagModel) -> None:
    if model.max_active_tasks is None:
        return
    longest = max((len(t.task_id.encode()) for t in model.tasks), default=0)
    entry = len(model.dag_id.encode()) + RUN_ID_BYTES + longest + 40
    if model.max_active_tasks * entry > RUN_POOL_ITEM_BYTES:
        fits = RUN_POOL_ITEM_BYTES // entry
        raise CompileError(
            f"max_active_tasks={model.max_active_tasks} is more than a run's slots can hold with ids this long "
            f"(at most {fits}; shorter dag and task ids allow more)",
            limit="max-active-tasks",
            file=model.file,
            line=model.line,
        )


def compile_dag(model: DagModel, source: DagSource, options: CompileOptions = CompileOptions()) -> CompiledDag:
    """Compile one DAG. Raises CompileError naming the file, line and limit when it cannot."""
    _check_run_pool_size(model)
    planned = with_groups_as_tasks(model)
    plan = build_plan(planned, options.gate_every_task)
    emitter = _Emitter(model, planned, options, plan.signals)
    body: dict[str, State] = {}
    entry = emitter.emit(plan.root, body, contract.DAGRUN_FINALIZE)
    states: dict[str, State] = {}
    dag = DagRef(model.dag_id, source.uri, source.version, source.model_uri(model))
    first = contract.DAGRUN_DEADLINES if model.deadlines else entry
    emitter.put(states, contract.DAGRUN_START, PassState(first, parameters=contract.initial_state_data(dag)))
    if model.deadlines:  # armed as the run starts: a one-off schedule each, nothing running until then
        arm = LambdaTask(options.function_name, contract.arm_payload(), entry, LAMBDA_MAX_TIMEOUT_SECONDS)
        emitter.put(states, contract.DAGRUN_DEADLINES, arm)
    states.update(body)
    finalize = LambdaTask(
        function_name=options.function_name,
        payload=contract.finalize_payload(),
        next=contract.DAGRUN_CHECK,
        timeout_seconds=LAMBDA_MAX_TIMEOUT_SECONDS,
        result_selector=contract.OUTCOME_SELECTOR,
        result_path=contract.OUTCOME_PATH,
    )
    emitter.put(states, contract.DAGRUN_FINALIZE, finalize)
    failed = ChoiceRule(contract.RUN_STATE_PATH, contract.DAGRUN_FAILED, string_equals=RunState.FAILED.value)
    emitter.put(states, contract.DAGRUN_CHECK, ChoiceState((failed,), default=contract.DAGRUN_SUCCEEDED))
    fail = FailState(contract.DAG_RUN_FAILED, cause_path=contract.RUN_CAUSE_PATH)
    emitter.put(states, contract.DAGRUN_FAILED, fail, runs=0)
    emitter.put(states, contract.DAGRUN_SUCCEEDED, SucceedState())
    comment = f"airstep DAG {model.dag_id} ({len(model.tasks)} tasks) from {source.uri} {source.version}"
    definition: dict[str, Any] = {"Comment": comment, "StartAt": contract.DAGRUN_START, "States": states}
    if model.dagrun_timeout:  # Step Functions ends the execution TIMED_OUT; the run tracker ends the run
        definition["TimeoutSeconds"] = math.ceil(model.dagrun_timeout)
    cost = emitter.cost
    compiled = CompiledDag(
        dag_id=model.dag_id,
        definition=definition,
        state_count=cost.states,
        task_count=len(model.tasks),
        gate_count=emitter.gates,
        transitions_per_run=cost.transitions,
        invocations_per_run=cost.invocations + cost.executor_calls,
        history_events_per_run=cost.events,
        history_events_worst_case=cost.worst_case_events(
            [t.retries for t in model.tasks if not t.calls_service],
            [t.retries for t in model.tasks if t.calls_service],
        ),
        mapped_tasks=tuple(t.task_id for t in model.tasks if t.mapped and t.map_group is None),
        mapped_groups=tuple(
            (group, len(members), emitter.group_events[group]) for group, members in model.map_groups.items()
        ),
        sensors=tuple(
            (
                t.task_id,
                max_pokes(t.sensor),
                0 if emitter._fits_in_history(t.sensor) else emitter.lap_pokes(t),
                t.sensor.waits_for_moment,
                t.trigger is not None,
            )
            for t in model.tasks
            if t.sensor is not None
        ),
        policy=dag_policy(model),
    )
    if options.check_limits:
        problem = check_limits(cost, compiled.definition_bytes, compiled.task_count, options.limits)
        size = policy_chars(largest(compiled.policy)) if compiled.policy is not None else 0
        if problem is None and size > POLICY_CHARS:
            problem = LimitProblem(
                "policy-size",
                f"its AWS operators' calls need an IAM policy of up to {size:,} characters, over IAM's "
                f"{POLICY_CHARS:,} for a role's policies; name fewer resources (a prefix, a pattern)",
            )
        if problem:
            raise CompileError(
                f"DAG {model.dag_id!r}: {problem.message}", limit=problem.limit, file=model.file, line=model.line
            )
    return compiled


Owners = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PollPlan:
    """A try's describe calls: the first `fast` come `interval` seconds apart, the rest up to `total`
    `longer_interval` apart."""

    fast: int
    interval: int
    total: int
    longer_interval: int


@dataclass(frozen=True, slots=True)
class _Guard:
    """items[start:stop] of a sequence are skipped for certain when `owner` skips `head`."""

    start: int
    stop: int
    owner: str
    head: str
    transitions: int


def _sensor_shape(task_id: str, pokes: int, lap_pokes: int, timed: bool, triggers: bool) -> str:
    if triggers:
        return (
            f"TriggerDagRunOperator {task_id}: its try asks start-run for the run (a runner, an executor and a "
            "start-run invocation), then waits for it: each poke reads the run's record (one runner invocation, no "
            f"executor), a Wait state between (no compute held), up to {pokes:,} pokes before its timeout"
            + (f" in child executions of {lap_pokes:,} pokes each" if lap_pokes else "")
        )
    if timed:
        return (
            f"time sensor {task_id}: one poke (a runner and an executor invocation) names its moment, one Wait "
            "state lasts until it, and one more poke ends the try (woken at its timeout, a runner invocation "
            f"alone ends it): ~{2 * EVENTS_PER_POKE} history events whatever the wait"
        )
    shape = (
        f"sensor {task_id}: a poke (one runner and one executor invocation), then a Wait state while not done "
        f"(no compute held), up to {pokes:,} pokes before its timeout"
    )
    if not lap_pokes:
        return f"{shape}: ~{EVENTS_PER_POKE} of this run's history events each"
    return (
        f"{shape}, too many for this run's history: the loop runs in child executions (their own history) of "
        f"{lap_pokes:,} pokes per try each, ~{math.ceil(pokes / lap_pokes)} of them, a handful of this run's "
        "history events each, at its poke_interval throughout"
    )


STATE_TIMEOUT_MAX_SECONDS = 99_999_999  # the most TimeoutSeconds Step Functions takes


def _call_timeout(limit: float | None) -> int | None:
    """A service call's TimeoutSeconds (None: no limit): at least 1 s, at most what Step Functions takes."""
    return None if limit is None else min(max(math.ceil(limit), 1), STATE_TIMEOUT_MAX_SECONDS)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _parallels(block: Block) -> int:
    if isinstance(block, Step):
        return 0
    inner = block.items if isinstance(block, Sequence) else block.branches
    return (not isinstance(block, Sequence)) + sum(map(_parallels, inner))


def _steps(block: Block) -> Iterator[Step]:
    if isinstance(block, Step):
        yield block
        return
    for inner in block.items if isinstance(block, Sequence) else block.branches:
        yield from _steps(inner)


class _Emitter:
    """Walks the plan and writes its states, adding each to the run's cost as it goes."""

    def __init__(
        self, model: DagModel, planned: DagModel, options: CompileOptions, signals: dict[str, list[str]]
    ) -> None:
        self.source = model
        self.model = planned  # what is being emitted: the DAG with its mapped task groups as tasks, or one group
        self.tasks = {**model.task_map, **planned.task_map}
        self.options = options
        self.signals = signals
        # Inside a mapped task group's item processor: its states' name suffix, payloads carry the
        # item's map index, and each state runs this many times per run (its instances in this history).
        self.suffix = ""
        self.indexed = False
        self.multiplier = 1
        self.group_events: dict[str, int] = {}  # a mapped task group's history events per inline instance
        self.cost = RunCost()
        self.parallel_count = 0
        self.gates = 0
        self.guard_count = 0
        self.guards: dict[str, dict[str, str]] = {}  # skipping task -> {guard: head task}
        self.owners: dict[str, int] = {}  # skipping task -> its number (where its verdicts go)
        self._closures: dict[str, frozenset[str]] = {}

    def put(self, states: dict[str, State], name: str, state: Any, runs: int = 1, runs_code: bool = False) -> None:
        """Add `state` (a builder) as `name`; a run enters it `runs` times when every task succeeds, each
        time calling the executor too if it `runs_code` (a task's run state)."""
        states[name] = state.to_asl()
        self.cost.add(name, state.kind, runs * self.multiplier, runs_code)

    def _payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        return contract.indexed_payload(payload) if self.indexed else payload

    def emit(self, block: Block, states: dict[str, State], next_name: str | None, scope: Owners = ()) -> str:
        """Add `block`'s states to `states`, leaving to `next_name` (None: end); return the entry.
        `scope`: the skipping tasks whose guards' verdicts are in the state data on entry."""
        if isinstance(block, Step):
            return self._emit_step(block, states, next_name)
        if isinstance(block, Sequence):
            return self._emit_items(block.items, states, next_name, scope)
        self.parallel_count += 1
        name = contract.parallel_state(self.parallel_count)
        if len(block.branches) >= self.options.map_min_tasks and all(
            isinstance(b, Step) and self._plain(self.tasks[b.task_id]) for b in block.branches
        ):
            branches = self._task_maps(name, block.branches)  # type: ignore[arg-type]
        else:
            branches = []
            for branch in block.branches:
                branch_states: dict[str, State] = {}
                items = branch.items if isinstance(branch, Sequence) else (branch,)
                start = self._emit_items(items, branch_states, None, scope)
                branches.append(Branch(start, branch_states))
        self.put(states, name, ParallelState(tuple(branches), next_name))
        return name

    def _plain(self, task: TaskModel) -> bool:
        """A task whose step is one run state (a Map item can be): not mapped, not a sensor's loop,
        not waiting for pool slots first."""
        return not task.mapped and task.sensor is None and not task.calls_service and not self._pooled(task)

    def _pooled(self, task: TaskModel) -> bool:
        """Whether the task's instances take slots before they run: of its pool, or of their run
        (the DAG's max_active_tasks)."""
        return task.pool is not None or self.source.max_active_tasks is not None

    def _emit_items(
        self, items: tuple[Block, ...], states: dict[str, State], next_name: str | None, scope: Owners
    ) -> str:
        """A sequence of blocks, with a guard in front of each stretch that a skipping task earlier
        in it (or in `scope`) may have skipped for certain."""
        scopes: list[Owners] = []
        for item in items:
            scopes.append(scope)
            task = self.tasks[item.task_id] if isinstance(item, Step) else None
            if task is not None and task.skips_downstream and not task.mapped:  # a mapped one has no verdicts
                scope = (*scope, item.task_id)
        guards = self._find_guards(items, scopes)
        entries: list[str | None] = [None] * len(items) + [next_name]
        parts: list[dict[str, State]] = []
        for k in reversed(range(len(items))):
            part: dict[str, State] = {}
            entry = self.emit(items[k], part, entries[k + 1], scopes[k])
            if k in guards:
                guarded: dict[str, State] = {}
                entry = self._put_guard(guarded, guards[k], entry, entries[guards[k].stop])
                part = {**guarded, **part}
            entries[k] = entry
            parts.append(part)
        for part in reversed(parts):
            states.update(part)
        first = entries[0]
        assert first is not None
        return first

    def _find_guards(self, items: tuple[Block, ...], scopes: list[Owners]) -> dict[int, _Guard]:
        """Non-overlapping stretches worth a guard, longest first from the left, each all skipped for
        certain when one downstream task of a skipping task in scope is skipped. A stretch holds no
        gated task and no task that signals a gate (a bypassed task tells no one)."""
        guards: dict[int, _Guard] = {}
        downstream = self.model.downstream()
        k = 0
        while k < len(items):
            best: _Guard | None = None
            for owner in scopes[k]:
                for head in downstream[owner]:
                    if head in self.source.map_groups:  # decided per instance: never skipped for certain
                        continue
                    closure = self._certain_skips(head)
                    stop, saved = k, 0
                    while stop < len(items) and (count := self._bypassable(items[stop], closure)):
                        saved, stop = saved + count, stop + 1
                    if saved >= MIN_GUARDED_TRANSITIONS and (best is None or saved > best.transitions):
                        best = _Guard(k, stop, owner, head, saved)
            if best is None:
                k += 1
            else:
                guards[k] = best
                k = best.stop
        return guards

    def _certain_skips(self, head: str) -> frozenset[str]:
        if head not in self._closures:
            self._closures[head] = self.model.certain_skips([head])
        return self._closures[head]

    def _bypassable(self, block: Block, closure: frozenset[str]) -> int:
        """The transitions a run makes in `block` (a state per task and per Parallel) if a guard may
        bypass all of its tasks, else 0."""
        steps = list(_steps(block))
        if all(
            s.task_id in closure
            and not s.gate
            and not self.signals.get(s.task_id)
            and s.task_id not in self.source.map_groups  # its tasks' records are the runner's to write
            for s in steps
        ):
            return len(steps) + _parallels(block)
        return 0

    def _put_guard(self, states: dict[str, State], guard: _Guard, entry: str, after: str | None) -> str:
        """The Choice in front of `guard`'s stretch: on to `after` when its owner's outcome says the
        stretch is skipped (the task runner has recorded those skips), else into the stretch."""
        self.guard_count += 1
        name, key = contract.guard_state(self.guard_count), contract.guard_key(self.guard_count)
        owner = self.owners.setdefault(guard.owner, len(self.owners) + 1)
        self.guards.setdefault(guard.owner, {})[key] = guard.head
        rule = PresentAndTrueRule(contract.bypass_variable(owner, key), after or contract.end_state(name))
        self.put(states, name, ChoiceState((rule,), default=entry))
        if after is None:
            self.put(states, rule.next, PassState(None), runs=0)
        return name

    def _emit_step(self, step: Step, states: dict[str, State], next_name: str | None) -> str:
        task = self.tasks[step.task_id]
        run = state_name(task.task_id, self.suffix)
        failed = contract.failed_state(run)
        signal = self.signals.get(task.task_id, [])
        expands = task.mapped and not self.indexed  # a mapped task or task group (not a task inside one)
        in_laps = task.sensor is not None and not self._fits_in_history(task.sensor)
        first = run + contract.EXPAND_SUFFIX if expands else run + contract.LAPS_SUFFIX if in_laps else run
        start = first
        if self._pooled(task) and not expands:  # a mapped task's instances acquire their own slots
            start = run + contract.POOL_SUFFIX
            acquire = self._acquire_state(self._payload(contract.acquire_payload(task.task_id)), first, failed)
            self.put(states, start, acquire)
        entry = start
        if step.gate:
            self.gates += 1
            entry = contract.wait_state(run)
            gate = self._gate_state(self._payload(contract.gate_payload(task.task_id, step.gate)), start)
            self.put(states, entry, gate)
        if task.mapped and task.sensor is not None:
            raise self._task_error(
                task,
                "a mapped sensor (or a sensor in a mapped task group) is not supported by airstep yet",
                "mapped-sensor",
            )
        if task.calls_service:
            integration = self._integration_of(task)
            if task.mapped:
                raise self._task_error(
                    task,
                    f"a mapped {integration.operator} (or one in a mapped task group) is not supported by airstep yet",
                    "mapped-integration",
                )
            self._emit_integration(task, integration, run, states, next_name, signal)
            return entry
        if expands:
            self._emit_mapped(task, run, states, next_name, signal)
            return entry
        if in_laps:
            self._emit_sensor_laps(task, run, states, next_name, signal)
            return entry
        guards = self.guards.get(task.task_id, {})
        payload = self._payload(contract.run_payload(task.task_id, signal, guards))
        run_state = self._run_state(payload, next_name, self._retriers(task), self._timeout(task), failed)
        if guards:  # its outcome says which guarded paths are skipped
            run_state = replace(
                run_state,
                result_selector=contract.bypass_selector(list(guards)),
                result_path=contract.bypass_path(self.owners[task.task_id]),
            )
        if task.sensor is not None:  # poke; until done, wait (no compute held) and poke again
            poked = run + contract.POKED_SUFFIX
            run_state = replace(
                run_state, next=poked, result_selector=contract.POKE_SELECTOR, result_path=contract.POKE_PATH
            )
            self._put_poke_loop(run, states, next_name, run)
            self.cost.events += (max_pokes(task.sensor) - 1) * EVENTS_PER_POKE
        self.put(states, run, run_state, runs_code=True)
        self._put_failed(states, failed, task.task_id, signal, next_name)
        return entry

    def _integration_of(self, task: TaskModel) -> Integration:
        """The service call of a task that makes one: its AWS operator's, or the ECS task of a try
        that runs in a container (airstep.containers)."""
        if task.integration is not None:
            return task.integration
        target = self.options.container
        if target is None:
            raise self._task_error(
                task,
                f"executor {containers.OPERATOR} runs a try in ECS Fargate, and this environment has no "
                "container settings (template.yaml: ContainerSubnets)",
                "container-target",
            )
        return target.integration()

    def _emit_integration(
        self,
        task: TaskModel,
        integration: Integration,
        run: str,
        states: dict[str, State],
        next_name: str | None,
        signal: list[str],
    ) -> None:
        """A task whose try is a service call (an AWS operator's integration, a container's ECS
        task): its try is the one branch of a Parallel state, so the task's Retry runs the whole try
        again (the run step: trigger rule, the try's start, its templated fields rendered or its
        request handed over; the call; the record step: the try's end with the call's result or
        error). No Lambda of ours runs while the service works."""
        region = self.options.region
        if integration.region is not None and region is not None and integration.region != region:
            raise self._task_error(
                task,
                f"region_name={integration.region!r} is not the environment's region ({region}): Step Functions "
                "makes the call in its own region",
                "integration-region",
            )
        begin, begun, call, record = (
            run + suffix
            for suffix in (contract.BEGIN_SUFFIX, contract.BEGUN_SUFFIX, contract.CALL_SUFFIX, contract.RECORD_SUFFIX)
        )
        function = self.options.function_name
        branch: dict[str, State] = {}
        run_step = LambdaTask(
            function,
            contract.run_payload(task.task_id, signal),
            begun,
            LAMBDA_MAX_TIMEOUT_SECONDS,
            result_selector=contract.BEGUN_SELECTOR,
            result_path=contract.BEGUN_PATH,
        )
        self.put(branch, begin, run_step, runs_code=integration.prepare)
        started = ChoiceRule(contract.BEGUN_STATE_PATH, call, string_equals=TaskState.RUNNING.value)
        self.put(branch, begun, ChoiceState((started,), default=contract.end_state(begun)))
        self.put(branch, contract.end_state(begun), PassState(None), runs=0)
        rendered = dict(contract.rendered_parameter(name) for name in integration.rendered)
        poll = integration.poll
        if task.container is not None:  # (the executor in the container stops the try at its execution_timeout)
            timeout = task.execution_timeout
            limit = _call_timeout(None if timeout is None else timeout + containers.START_SECONDS)
        else:
            limit = _call_timeout(integration.time_limit(task.execution_timeout))
        after_call = record
        if poll is not None and poll.waits:
            after_call = run + contract.POLLS_SUFFIX
        elif poll is not None and not poll.describes_first:
            after_call = run + contract.DESCRIBE_SUFFIX
        service = ServiceTask(
            integration.resource,
            {**integration.parameters, **rendered},
            next=after_call,
            catch_next=record,
            result_path=contract.BEGUN_PATH if poll is None else contract.CALL_RESULT_PATH,
            error_path=contract.BEGUN_PATH,
            result_selector=self._call_selector(integration) if poll is None else self._start_selector(poll),
            timeout_seconds=limit,
            resume_errors=poll.resume_on if poll is not None else (),
            # a sensor's first poke is a describe call like the others: made again when throttled
            retry_all=self._describe_retrier() if poll is not None and poll.describes_first else None,
        )
        self.put(branch, call, service)
        if poll is not None:
            self._put_polls(task, integration, run, branch, record, limit)
        end_call = LambdaTask(
            function, contract.end_call_payload(task.task_id, signal), None, LAMBDA_MAX_TIMEOUT_SECONDS
        )
        self.put(branch, record, end_call)
        failed = contract.failed_state(run)
        try_state = ParallelState((Branch(begin, branch),), next_name, self._retriers(task), failed)
        self.put(states, run, try_state)
        self._put_failed(states, failed, task.task_id, signal, next_name)

    @staticmethod
    def _start_selector(poll: Poll) -> dict[str, Any] | None:
        """A start call waited for by describe calls keeps its whole answer (nested as theirs, if so)."""
        return contract.nested_answer(poll.nest_start) if poll.nest_start else None

    @staticmethod
    def _call_selector(integration: Integration) -> dict[str, Any]:
        """What of a call's response its state data keeps: all of it, or only the key the operator
        returns and the key of the state its work ended in."""
        if not integration.returns_value:
            return contract.call_selector()
        return contract.call_selector(*dict.fromkeys(k for k in (integration.returns[0], integration.ended) if k))

    def _put_polls(
        self,
        task: TaskModel,
        integration: Integration,
        run: str,
        branch: dict[str, State],
        record: str,
        limit: int | None,
    ) -> None:
        """The describe calls after a call whose service has no `.sync`: again every interval while the
        work runs, at most as many times as the operator's waiter (or its execution_timeout) allows.
        So that they fit their share of the run's history, the interval may be longer than the
        operator's (the same total wait, fewer calls)."""
        integration = task.integration
        assert integration is not None and integration.poll is not None
        poll = integration.poll
        describe, count, described, pause = (
            run + suffix
            for suffix in (
                contract.DESCRIBE_SUFFIX,
                contract.COUNT_SUFFIX,
                contract.DESCRIBED_SUFFIX,
                contract.PAUSE_SUFFIX,
            )
        )
        parameters: dict[str, Any] = {}
        for entry in poll.parameters:  # (`ClusterId=JobFlowIds[0]`: the call's first JobFlowIds as ClusterId)
            name, _, source = entry.partition("=")
            source = source or name
            base, indexed, index = source.partition("[")
            if base in integration.parameters:
                value = integration.parameters[base]
                parameters[name] = value[int(index.rstrip("]"))] if indexed else value
            elif base in integration.rendered:
                parameters.update((contract.rendered_parameter(name, source),))
        parameters.update(contract.answered_parameter(name) for name in poll.from_answer)
        if poll.each:
            parameters.update((contract.each_parameter(poll.each_parameter, poll.each),))
        next_state = count if poll.waits else record
        call = ServiceTask(
            poll.resource,
            parameters,
            next=next_state,
            catch_next=record,
            result_path=contract.DESCRIBED_PATH if poll.each else contract.CALL_RESULT_PATH,
            error_path=contract.BEGUN_PATH,
            timeout_seconds=DESCRIBE_TIMEOUT_SECONDS,
            retry_all=self._describe_retrier(),  # a throttled or failed check is made again; the work goes on meanwhile
        )
        if not poll.waits:
            if not poll.describes_first:
                self.put(branch, describe, call)
            return
        self.put(branch, describe, call)
        plan = self._polls(task, poll.max_polls, poll.interval_seconds, limit)
        first = count if poll.describes_first else describe  # (a sensor's call was its first poke)
        if poll.each:  # each of a list in turn: which one, and the last one's index, beside the count
            polls = PassState(first, parameters=contract.first_poll_of_each(poll.each), result_path=contract.POLLS_PATH)
            counted = contract.next_poll_of_each(advance=False)
        else:
            polls = PassState(first, result=contract.FIRST_POLL, result_path=contract.POLLS_PATH)
            counted = contract.NEXT_POLL
        self.put(branch, run + contract.POLLS_SUFFIX, polls)
        self.put(branch, count, PassState(described, parameters=counted, result_path=contract.POLLS_PATH))
        status = contract.described_path(poll.status)

        def still(limit: int, then: str) -> WhileRule | UntilRule:
            if not poll.until:
                return WhileRule(status, poll.running, contract.POLL_COUNT_PATH, limit, then)
            rendered = poll.until in integration.rendered
            expected = contract.rendered_parameter(poll.until)[1] if rendered else integration.parameters[poll.until]
            # (a listing by a prefix answers only keys that start with it: one listed is one found)
            value = None if poll.until_prefix else expected
            return UntilRule(status, value, rendered, contract.POLL_COUNT_PATH, limit, then)

        rules: list[Any] = [still(plan.fast, pause)]
        if poll.each:  # an item ended well and more follow: the next is described at once (as the waiter does)
            following = run + contract.NEXT_ITEM_SUFFIX
            ended_well = NextItemRule(
                status, poll.each_done, contract.POLL_INDEX_PATH, contract.POLL_LAST_PATH, following
            )
            rules.insert(0, ended_well)
            advance = contract.next_poll_of_each(advance=True)
            self.put(
                branch, following, PassState(describe, parameters=advance, result_path=contract.POLLS_PATH), runs=0
            )
        self.put(branch, pause, PauseState(plan.interval, describe), runs=0)
        if plan.total > plan.fast:  # a long wait: its later checks further apart
            longer = run + contract.LONGER_PAUSE_SUFFIX
            rules.append(still(plan.total, longer))
            self.put(branch, longer, PauseState(plan.longer_interval, describe), runs=0)
        self.put(branch, described, ChoiceState(tuple(rules), default=record))
        self.cost.events += (plan.total - 1) * EVENTS_PER_POLL
        self.cost.retried_poll_events += task.retries * (plan.total - 1) * EVENTS_PER_POLL

    @functools.cached_property
    def _pollers(self) -> int:
        """The tasks whose describe calls wait for their work: they share the run's history for them."""
        return sum(1 for t in self.model.tasks if t.integration and t.integration.poll and t.integration.poll.waits)

    def _polls(self, task: TaskModel, max_polls: int, interval: int, limit: int | None) -> PollPlan:
        """How many describe calls a try makes at most, and how many seconds apart: the operator's
        waiter (or sensor's timeout), within the task's time limit and the share of the run's history
        its tries get. When they would not fit, half the checks come at the operator's interval and
        the rest further apart, so that a short wait is seen as soon and a long one still lasts."""
        if limit is not None:
            max_polls = max(1, min(max_polls, math.ceil(limit / interval)))
        share = self.options.limits.history_events * POLL_HISTORY_SHARE / EVENTS_PER_POLL / self._pollers
        fits = max(2, int(share / (task.retries + 1)))
        if max_polls <= fits:
            return PollPlan(max_polls, interval, max_polls, interval)
        fast = fits // 2
        return PollPlan(fast, interval, fits, math.ceil((max_polls - fast) * interval / (fits - fast)))

    def _put_failed(
        self, states: dict[str, State], failed: str, task_id: str, signal: list[str], next_name: str | None
    ) -> None:
        """Where the task's last failed try leads (see `_put_fail_state`): a pooled task's always
        records it, which gives its slots back."""
        if signal or self._pooled(self.tasks[task_id]):
            self._put_fail_state(states, failed, self._payload(contract.fail_payload(task_id, signal)), next_name)
        else:
            self.put(states, failed, PassState(next_name), runs=0)

    def _fits_in_history(self, sensor: SensorPolicy) -> bool:
        """Whether a sensor's pokes until its timeout fit in its share of half the run's history;
        if not, its loop runs in child executions (`_emit_sensor_laps`)."""
        sensors = sum(1 for t in self.model.tasks if t.sensor is not None)
        share = int(self.options.limits.history_events * SENSOR_HISTORY_SHARE / EVENTS_PER_POKE / sensors)
        return max_pokes(sensor) <= share

    def lap_pokes(self, task: TaskModel) -> int:
        """The pokes of one try in one of a sensor's child executions: with its retries' tries, they
        fill at most 90% of the child's history."""
        budget = self.options.limits.history_events * 0.9 / EVENTS_PER_CHILD_POKE / (task.retries + 1)
        return max(2, min(SENSOR_LAP_POKES, int(budget)))

    def _emit_sensor_laps(
        self, task: TaskModel, run: str, states: dict[str, State], next_name: str | None, signal: list[str]
    ) -> None:
        """A sensor whose pokes would not fit in the run's history: its poke loop runs in a child
        execution (a Distributed Map of one item, with its own history) that ends when the sensor is
        done or its pokes are spent; then another child takes the try over, at the same cadence."""
        assert task.sensor is not None
        laps, lap, lapped = run + contract.LAPS_SUFFIX, run + contract.LAP_SUFFIX, run + contract.LAPPED_SUFFIX
        failed = contract.failed_state(run)
        # each try (a retry starts afresh) may use its children to the timeout
        count = math.ceil(max_pokes(task.sensor) / self.lap_pokes(task)) * (task.retries + 1)
        self.put(states, laps, PassState(lap, result=[0], result_path=contract.LAPS_PATH), runs=count)
        children = DistributedMapState(
            None,
            contract.mapped_item_selector(task.task_id),
            self._sensor_lap(task, run, signal),
            lapped,
            max_concurrency=1,
            catch_next=failed,
            items_path=contract.LAPS_PATH,
            result_path=contract.LAP_PATH,
            result_selector=contract.LAP_SELECTOR,
        )
        self.put(states, lap, children, runs=count)
        again = PresentAndTrueRule(contract.LAP_DONE_PATH, laps, value=False)
        self.put(states, lapped, ChoiceState((again,), default=next_name or contract.end_state(lapped)), runs=count)
        if next_name is None:
            self.put(states, contract.end_state(lapped), PassState(None), runs=0)
        self._put_failed(states, failed, task.task_id, signal, next_name)

    def _sensor_lap(self, task: TaskModel, run: str, signal: list[str]) -> Branch:
        """A child execution of a sensor's loop: poke, and wait while not done, until the runner says
        the child's pokes are spent; it outputs {"done": false} then, else {"done": true}."""
        states: dict[str, State] = {}
        poked, again = run + contract.POKED_SUFFIX, run + contract.NEXT_LAP_SUFFIX
        done, spent, failed = (
            run + contract.DONE_SUFFIX,
            run + contract.SPENT_SUFFIX,
            failed_state(run + contract.CHILD_SUFFIX),
        )
        payload = contract.run_payload(task.task_id, signal, lap_pokes=self.lap_pokes(task))
        poke = replace(
            self._run_state(payload, poked, self._retriers(task), self._timeout(task), failed),
            result_selector=contract.LAP_POKE_SELECTOR,
            result_path=contract.POKE_PATH,
        )
        self.put(states, run, poke, runs=0)
        self._put_poke_loop(run, states, done, again, runs=0)
        is_spent = ChoiceRule(contract.POKE_LAP_PATH, spent, boolean_equals=True)
        self.put(states, again, ChoiceState((is_spent,), default=run), runs=0)
        self.put(states, spent, PassState(None, result={contract.POKE_DONE: False}, result_path="$"), runs=0)
        self.put(states, done, PassState(None, result={contract.POKE_DONE: True}, result_path="$"), runs=0)
        self._put_failed(states, failed, task.task_id, signal, done)
        return Branch(run, states, DISTRIBUTED_PROCESSOR)

    def _put_poke_loop(
        self, run: str, states: dict[str, State], next_name: str | None, wake: str, runs: int = 1
    ) -> None:
        """After a poke (`run@poked`): on to `next_name` when done, else a Wait (`run@sleep`) for the
        seconds the runner chose, then `wake` (the poke again, or a child's check of its pokes)."""
        poked, sleep = run + contract.POKED_SUFFIX, run + contract.SLEEP_SUFFIX
        not_done = ChoiceRule(contract.POKE_DONE_PATH, sleep, boolean_equals=False)
        self.put(states, poked, ChoiceState((not_done,), default=next_name or contract.end_state(poked)), runs=runs)
        if next_name is None:
            self.put(states, contract.end_state(poked), PassState(None), runs=0)
        self.put(states, sleep, WaitState(contract.POKE_WAIT_PATH, wake), runs=0)

    def _emit_mapped(
        self, task: TaskModel, run: str, states: dict[str, State], next_name: str | None, signal: list[str]
    ) -> None:
        """A mapped task (or task group): the expand step decides it and counts its instances; up to
        40 run in an inline Map, more in a Distributed Map (each instance a child execution with its
        own history); then, if gates wait on the task, a step tells them it has ended."""
        members = [self.tasks[m] for m in self.source.map_groups.get(task.task_id, ())]
        concurrency = min((m.max_active_tis_per_dagrun for m in members if m.max_active_tis_per_dagrun), default=0)
        failed = contract.failed_state(run)
        after = run + contract.SIGNAL_SUFFIX if signal else next_name
        fanout = run + contract.FANOUT_SUFFIX
        expand = LambdaTask(
            function_name=self.options.function_name,
            payload=contract.expand_payload(task.task_id),
            next=fanout,
            timeout_seconds=LAMBDA_MAX_TIMEOUT_SECONDS,
            result_selector=contract.EXPAND_SELECTOR,
            result_path=contract.MAPPED_PATH,
            catch_next=failed,
        )
        self.put(states, run + contract.EXPAND_SUFFIX, expand)
        inline, distributed = run + contract.MAP_SUFFIX, run + contract.DISTRIBUTED_MAP_SUFFIX
        to_children = ChoiceRule(contract.MAPPED_READER_PATH, distributed, is_null=False)
        self.put(states, fanout, ChoiceState((to_children,), default=inline))
        selector = contract.mapped_item_selector(task.task_id)
        concurrency = concurrency or task.max_active_tis_per_dagrun or 0
        items = contract.INLINE_MAP_MAX_ITEMS  # the estimate holds the most a run's history gets
        instances = InlineMapState(
            contract.MAPPED_INDEXES_PATH,
            selector,
            self._processor(task, run, contract.INSTANCE_SUFFIX, INLINE_PROCESSOR, items),
            after,
            max_concurrency=concurrency,
        )
        self.put(states, inline, instances)
        self.cost.add_map_items(items)
        children = DistributedMapState(
            contract.mapped_item_reader(),
            selector,
            self._processor(task, run, contract.CHILD_SUFFIX, DISTRIBUTED_PROCESSOR, 0, child=True),
            after,
            max_concurrency=concurrency or DISTRIBUTED_MAP_CONCURRENCY,
            catch_next=failed,
        )
        self.put(states, distributed, children, runs=0)
        if signal:
            notify = LambdaTask(
                function_name=self.options.function_name,
                payload=contract.signal_payload(task.task_id, signal),
                next=next_name,
                timeout_seconds=LAMBDA_MAX_TIMEOUT_SECONDS,
            )
            self.put(states, after, notify)  # type: ignore[arg-type]
            self._put_fail_state(states, failed, contract.fail_payload(task.task_id, signal), next_name)
        else:
            self.put(states, failed, PassState(next_name), runs=0)

    def _processor(
        self, task: TaskModel, run: str, suffix: str, config: dict[str, str], runs: int, child: bool = False
    ) -> Branch:
        """What each instance of a mapped task or task group runs."""
        if task.task_id in self.source.map_groups:
            return self._group_processor(task.task_id, run, suffix, config, runs, child)
        return self._instance_processor(task, run + suffix, config, runs, child)

    def _group_processor(
        self, group_id: str, run: str, suffix: str, config: dict[str, str], runs: int, child: bool
    ) -> Branch:
        """A mapped task group's instance: the plan of its tasks, each state carrying the instance's
        map index (the runner decides each task at that index), ending in a Pass (a child execution's
        output is {})."""
        group = group_model(self.source, group_id)
        plan = build_plan(group, self.options.gate_every_task)
        outer = (self.model, self.signals, self.suffix, self.indexed, self.multiplier)
        self.model, self.signals, self.suffix, self.indexed, self.multiplier = group, plan.signals, suffix, True, runs
        events = self.cost.events
        try:
            states: dict[str, State] = {}
            done = state_name(group_id, suffix)
            entry = self.emit(plan.root, states, done)
            self.put(states, done, PassState(None, drop_output=child))
            if runs:  # its states' events, and its iteration's
                self.group_events[group_id] = (self.cost.events - events) // runs + 2
        finally:
            self.model, self.signals, self.suffix, self.indexed, self.multiplier = outer
        return Branch(entry, states, config)

    def _instance_processor(
        self, task: TaskModel, name: str, config: dict[str, str], runs: int, child: bool = False
    ) -> Branch:
        """One mapped instance: the task's run state (its retries, its timeout) and where a failed
        last try goes; `runs`: instances this counts into the parent's history. A child execution
        outputs {}: the Distributed Map gathers every child's output, within the 256 KiB of state data."""
        processor: dict[str, State] = {}
        run_state = self._run_state(
            contract.mapped_run_payload(), None, self._retriers(task), self._timeout(task), failed_state(name)
        )
        self.put(processor, name, replace(run_state, drop_output=child), runs=runs, runs_code=True)
        if not self._pooled(task):
            self.put(processor, failed_state(name), PassState(None, drop_output=child), runs=0)
            return Branch(name, processor, config)
        # a pooled instance's crash is recorded at once: its slots go back before the run ends (a
        # child execution still outputs {})
        end = contract.end_state(failed_state(name))
        self._put_fail_state(processor, failed_state(name), contract.mapped_fail_payload(), end)
        self.put(processor, end, PassState(None, drop_output=child), runs=0)
        acquire = name + contract.POOL_SUFFIX
        self.put(
            processor, acquire, self._acquire_state(contract.acquire_payload(None), name, failed_state(name)), runs
        )
        return Branch(acquire, processor, config)

    def _task_maps(self, name: str, steps: tuple[Step, ...]) -> list[Branch]:
        """Many parallel tasks as inline Maps: tasks with one retry/timeout policy share an item
        processor written once; at most MAP_CHUNK items per Map, so inline Map's 40-way concurrency
        never delays a task. Each branch: a Pass that sets the items, then the Map."""
        groups: dict[tuple[tuple[Retrier, ...], int], list[Step]] = {}
        for step in steps:
            task = self.tasks[step.task_id]
            groups.setdefault((self._retriers(task), self._timeout(task)), []).append(step)
        branches = []
        for (retriers, timeout), members in groups.items():
            for start in range(0, len(members), MAP_CHUNK):
                chunk = members[start : start + MAP_CHUNK]
                names = MapStateNames(contract.map_branch(name, len(branches) + 1))
                items = [contract.map_item(s.task_id, self.signals.get(s.task_id, []), s.gate) for s in chunk]
                waiting = sum(1 for step in chunk if step.gate)
                self.gates += waiting
                processor = self._item_processor(names, retriers, timeout, items=len(items), waiting=waiting)
                branch_states: dict[str, State] = {}
                items_state = PassState(names.tasks, result=items, result_path=contract.MAP_ITEMS_PATH)
                self.put(branch_states, names.items, items_state)
                task_map = InlineMapState(contract.MAP_ITEMS_PATH, contract.MAP_ITEM_SELECTOR, processor, None)
                self.put(branch_states, names.tasks, task_map)
                self.cost.add_map_items(len(items))
                branches.append(Branch(names.items, branch_states))
        return branches

    def _item_processor(
        self, names: MapStateNames, retriers: tuple[Retrier, ...], timeout: int, *, items: int, waiting: int
    ) -> Branch:
        """One task per Map item (`$.item`: task_id, signal, wait_for?): gate if needed, run, catch.
        A Map none of whose items waits has no Choice and no gate (one state transition per item)."""
        states: dict[str, State] = {}
        if waiting:
            gated = ChoiceRule(contract.MAP_ITEM_GATED_PATH, names.wait, is_present=True)
            self.put(states, names.gated, ChoiceState((gated,), default=names.run), runs=items)
            self.put(states, names.wait, self._gate_state(contract.gate_payload(None), names.run), runs=waiting)
        run_state = self._run_state(contract.run_payload(None), None, retriers, timeout, names.failed)
        self.put(states, names.run, run_state, runs=items, runs_code=True)
        self._put_fail_state(states, names.failed, contract.fail_payload(None), None)
        return Branch(names.gated if waiting else names.run, states, INLINE_PROCESSOR)

    def _gate_state(self, payload: dict[str, Any], next_name: str) -> LambdaTask:
        """Waits for the task token that the gate's last upstream releases."""
        return LambdaTask(
            function_name=self.options.function_name,
            payload=payload,
            next=next_name,
            timeout_seconds=GATE_TIMEOUT_SECONDS,
            wait_for_token=True,
        )

    def _acquire_state(self, payload: dict[str, Any], next_name: str, failed: str) -> LambdaTask:
        """Waits for a pooled task's slots: the task token the runner sends once it holds them (at
        once, or when slots come back); a pool it cannot use fails the task."""
        return replace(self._gate_state(payload, next_name), catch_next=failed)

    def _run_state(
        self,
        payload: dict[str, Any],
        next_name: str | None,
        retriers: tuple[Retrier, ...],
        timeout: int,
        failed: str,
    ) -> LambdaTask:
        """Runs one try; the task's own Retry, its timeout, and every error caught into `failed`."""
        return LambdaTask(
            function_name=self.options.function_name,
            payload=payload,
            next=next_name,
            timeout_seconds=timeout,
            retriers=retriers,
            catch_next=failed,
        )

    def _put_fail_state(
        self, states: dict[str, State], name: str, payload: dict[str, Any], next_name: str | None
    ) -> None:
        """Where a task's last failed try leads when gated tasks wait on it: records a try that timed
        out or crashed and signals those gates. Without gates waiting, a Pass leads on instead and the
        failure is recorded by the runner or by the task's first reader (a downstream or finalize).
        If even recording fails, the run carries on (to an end state at a branch's end): the task's
        first reader settles it."""
        catch_next = next_name or contract.end_state(name)
        state = LambdaTask(
            function_name=self.options.function_name,
            payload=payload,
            next=next_name,
            timeout_seconds=LAMBDA_MAX_TIMEOUT_SECONDS,
            result_selector=contract.OUTCOME_STATE_SELECTOR,
            result_path=contract.CAUGHT_ERROR_PATH,
            catch_next=catch_next,
        )
        self.put(states, name, state, runs=0)
        if next_name is None:
            self.put(states, catch_next, PassState(None), runs=0)

    def _task_error(self, task: TaskModel, message: str, limit: str) -> CompileError:
        """The CompileError for a task the compiler cannot emit, at the task's line."""
        return CompileError(f"task {task.task_id!r}: {message}", limit=limit, file=self.source.file, line=task.line)

    def _timeout(self, task: TaskModel) -> int:
        """The run state's TimeoutSeconds: the try's own limit plus time for the runner to record it."""
        if task.execution_timeout is None:
            return LAMBDA_MAX_TIMEOUT_SECONDS + RECORDING_MARGIN_SECONDS
        seconds = max(1, math.ceil(task.execution_timeout))
        if seconds > LAMBDA_MAX_TIMEOUT_SECONDS:
            raise self._task_error(
                task,
                f"execution_timeout of {seconds} s exceeds the {LAMBDA_MAX_TIMEOUT_SECONDS} s that a Lambda task "
                "can run",
                "lambda-timeout",
            )
        return seconds + RECORDING_MARGIN_SECONDS

    def _describe_retrier(self) -> Retrier:
        """The Retry of a describe call (a throttled or failed check is made again)."""
        if self.options.fast_retries:
            return replace(DESCRIBE_RETRIER, interval_seconds=1, backoff_rate=1.0)
        return DESCRIBE_RETRIER

    def _retriers(self, task: TaskModel) -> tuple[Retrier, ...]:
        """Airflow's retries as a Retry: try n+1 waits retry_delay * backoff**(n-1), capped."""
        if task.retries == 0:
            return ()
        if self.options.fast_retries:
            return (Retrier(contract.RETRYABLE_ERRORS, 1, task.retries, 1),)
        max_delay = None
        if task.retry_exponential_backoff:
            cap = task.max_retry_delay if task.max_retry_delay is not None else AIRFLOW_MAX_RETRY_DELAY_SECONDS
            max_delay = max(1, math.ceil(cap))
        return (
            Retrier(
                contract.RETRYABLE_ERRORS,
                interval_seconds=max(1, math.ceil(task.retry_delay)),
                max_attempts=task.retries,
                backoff_rate=task.retry_exponential_backoff or 1,
                max_delay_seconds=max_delay,
            ),
        )
