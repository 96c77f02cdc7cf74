"""The fault-injection suite: many runs of random DAGs while AWS misbehaves, every record checked.

Each run's DAG is random (4-10 tasks, random edges, every trigger rule, tasks that succeed, fail,
skip themselves, fail once then succeed on a retry, or run past their execution_timeout), and so are
its faults: Lambda throttling and service errors, DynamoDB throttling inside the functions (the SDK's
own retries exhausted), invocations delivered twice, and the run's status events duplicated and
reordered. A run passes when no record is lost, stuck or wrong: the run and every task instance end
in the state Airflow's semantics give without any fault (airstep_local.expected_states), nothing is
left running, and late or duplicate events do not move the run record.

bench/fault_injection.py runs 1,000 of them and prints the figures; the tests run a few dozen.
"""

from __future__ import annotations

import json
import random
import tempfile
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from airstep.contract import Action
from airstep.loader import content_version
from airstep.model import DagModel
from airstep.runtime import run_tracker
from airstep.runtime.store import RunKey
from airstep.sandbox import parse_dag_file
from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule
from airstep_compiler import DagSource
from airstep_local.aws import current_function
from airstep_local.engine import LocalEngine, RunRequest
from airstep_local.expected_states import Expected, OrderDependent, PlannedTask, expected_states
from airstep_local.faults import DYNAMODB_THROTTLED, SERVICE_ERROR, THROTTLED, Faults

BEHAVIOURS = ("succeeds", "succeeds", "succeeds", "succeeds", "fails", "skips", "flaky", "overtime")
# An overtime task waits in a loop until its execution_timeout interrupts it. It does not spin: two dozen
# runs' tasks spinning in this one process (in AWS each executor is a process of its own) made the
# process itself crash now and then (a segfault, a spurious RecursionError, in 3.11 and 3.12 alike;
# never with waiting tasks), which is not what this suite is about.
CONCURRENT_RUNS = 24  # runs in flight at once: most of a run's time is retry delays
RULES = tuple(TriggerRule)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """The chance of each fault, per Lambda invocation or per DynamoDB call made in a function."""

    throttle: float = 0.04
    service_error: float = 0.005
    dynamodb_throttle: float = 0.01
    duplicate: float = 0.03


@dataclass
class SuiteReport:
    runs: int = 0
    tasks: int = 0
    records_checked: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def random_dag(rng: random.Random, dag_id: str) -> tuple[str, Expected]:
    """A DAG file's source, and what Airflow's semantics give when nothing goes wrong. DAGs whose
    answer depends on how long tasks take (airstep_local.expected_states) are drawn again."""
    while True:
        source, planned = _draw_dag(rng, dag_id)
        try:
            return source, expected_states(planned)
        except OrderDependent:
            continue


def _draw_dag(rng: random.Random, dag_id: str) -> tuple[str, list[PlannedTask]]:
    count = rng.randint(4, 10)
    tasks = [f"t{i}" for i in range(count)]
    upstream = {t: sorted(rng.sample(tasks[:i], min(i, rng.randint(0, 3)))) for i, t in enumerate(tasks)}
    behaviour = {t: rng.choice(BEHAVIOURS) for t in tasks}
    rule = {t: rng.choice(RULES) if upstream[t] else TriggerRule.ALL_SUCCESS for t in tasks}
    lines = [
        "import time",
        "from airstep import DAG, PythonOperator, AirflowSkipException",
        "",
        "def act(behaviour, ti=None):",
        "    if behaviour == 'fails':",
        "        raise ValueError('planned failure')",
        "    if behaviour == 'skips':",
        "        raise AirflowSkipException()",
        "    if behaviour == 'flaky' and ti.try_number == 1:",
        "        raise ValueError('fails once')",
        "    if behaviour == 'overtime':",  # (waiting, not spinning: see OVERTIME)
        "        while True:",
        "            time.sleep(0.01)",
        "",
        f"with DAG({dag_id!r}) as dag:",
    ]
    for t in tasks:
        policy = {"flaky": "retries=1, retry_delay=1", "overtime": "execution_timeout=1"}
        extra = policy.get(behaviour[t], "")
        lines.append(
            f"    {t} = PythonOperator(task_id={t!r}, python_callable=act, op_args=[{behaviour[t]!r}], "
            f"trigger_rule={rule[t].value!r}{', ' + extra if extra else ''})"
        )
    lines += [f"    {u} >> {t}" for t in tasks for u in upstream[t]]
    outcome = {"succeeds": TaskState.SUCCESS, "fails": TaskState.FAILED, "skips": TaskState.SKIPPED}
    outcome.update(flaky=TaskState.SUCCESS, overtime=TaskState.FAILED)
    planned = [
        PlannedTask(t, tuple(upstream[t]), rule[t], outcome[behaviour[t]], 2 if behaviour[t] == "flaky" else 1)
        for t in tasks
    ]
    return "\n".join(lines) + "\n", planned


def fault_plan(rng: random.Random, rates: FaultRates, engine: LocalEngine) -> Faults:
    lock = threading.Lock()

    def chance(p: float) -> bool:
        with lock:
            return rng.random() < p

    def invoke(function: str, event: dict) -> str | None:
        if chance(rates.throttle):
            return THROTTLED
        return SERVICE_ERROR if chance(rates.service_error) else None

    def dynamodb(operation: str, request: dict) -> str | None:
        inside = current_function.get() in (engine.names.run_task, engine.names.execute_task)
        return DYNAMODB_THROTTLED if inside and chance(rates.dynamodb_throttle) else None

    def duplicate(function: str, event: dict) -> bool:
        return event.get("action") != Action.GATE and chance(rates.duplicate)

    return Faults(invoke=invoke, dynamodb=dynamodb, duplicate=duplicate)


def run_suite(runs: int, seed: int = 1, rates: FaultRates = FaultRates()) -> SuiteReport:
    """Run `runs` random DAGs under random faults and check every record; the report lists problems."""
    report = SuiteReport()
    rng = random.Random(seed)  # the DAGs: the same for a seed (faults_<seed>_<n> can be drawn again)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="airstep-faults-") as folder, LocalEngine() as engine:
        faults = fault_plan(random.Random(f"faults-{seed}"), rates, engine)  # (drawn as the runs' threads call)
        engine.session.faults = faults
        for first in range(0, runs, CONCURRENT_RUNS):
            batch = []
            for number in range(first, min(first + CONCURRENT_RUNS, runs)):
                dag_id = f"faults_{seed}_{number}"
                source, expected = random_dag(rng, dag_id)
                path = Path(folder) / f"{dag_id}.py"
                path.write_text(textwrap.dedent(source))
                parsed = parse_dag_file(path)
                if parsed.errors:
                    report.problems.append(f"{dag_id}: {parsed.errors}")
                    continue
                model = DagModel.from_json(parsed.models[0])
                source_ref = DagSource(str(path), content_version(path.read_bytes()))
                batch.append((model, expected, engine.start(model, source_ref, RunRequest())))
            for model, expected, run in batch:
                engine.finish(run)
                report.runs += 1
                report.tasks += len(model.tasks)
                report.problems += _check(engine, model, run.run_id, expected, rng)
                report.records_checked += len(model.tasks) + 1
        engine.session.faults = None
        report.faults.update(faults.injected)
    report.seconds = time.monotonic() - started
    return report


def _check(engine: LocalEngine, model: DagModel, run_id: str, expected: Expected, rng: random.Random) -> list[str]:
    problems = []
    key = RunKey(model.dag_id, run_id)
    found = {ti.task_id: ti for ti in engine.store.task_instances(key)}
    for task_id, state in expected.states.items():
        ti = found.get(task_id)
        got = ti.state if ti else None
        if got is not state:  # (with the recorded error: what the run said happened)
            said = f" ({ti.error})" if ti is not None and ti.error else ""
            problems.append(f"{model.dag_id}/{task_id}: expected {state}, recorded {got}{said}")
    want = expected.run_state
    record = engine.store.get_run(key)
    if record is None or record.state is not want or record.exec_status in (None, "RUNNING"):
        said = (
            "no run record"
            if record is None
            else f"{record.state} (execution {record.exec_status}, verdict at {record.finished_at}: {record.error})"
        )
        problems.append(f"{model.dag_id}: run expected {want}, recorded {said}")
        return problems
    # EventBridge delivers status events at least once, in any order: replay the final one and a stale
    # RUNNING; the record must not move.
    final = {
        "executionArn": record.execution_arn,
        "stateMachineArn": "",
        "name": run_id,
        "status": record.exec_status,
        "input": json.dumps({"dag_id": model.dag_id, "run_id": run_id}),
        "startDate": datetime.fromisoformat(record.start_date or ""),
        "stopDate": datetime.fromisoformat(record.end_date or ""),
    }
    for detail in rng.sample([final, {**final, "status": "RUNNING", "stopDate": None}, final], 3):
        run_tracker.track(run_tracker.status_event(detail), engine.store)
    if engine.store.get_run(key) != record:
        problems.append(f"{model.dag_id}: a replayed status event changed the run record")
    return problems
