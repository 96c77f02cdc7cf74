"""Run conformance DAGs on the local engine, many at a time, and read back what airstep recorded."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airstep.runtime.store import RunKey
from airstep_local.engine import LocalEngine, RunRequest
from conformance.dag_specs import DagSpec
from helpers import load_model

CONCURRENT_RUNS = 24  # runs in flight at once: most of a run's time is retry waits
GATED_SUFFIX = "__gated"
PLANS = ("series-parallel", "gated")
# The gated plan (a gate before every task) runs every GATED_SHARE-th recorded DAG: gates are one
# mechanism whatever the DAG, and its 524 runs took seven minutes of a CI core (the plain plan runs all).
GATED_SHARE = 4


def planned(plan: str, specs: list[DagSpec]) -> list[DagSpec]:
    """The recorded DAGs the plan runs: all of them, or for the gated plan every GATED_SHARE-th."""
    ordered = sorted(specs, key=lambda spec: spec.dag_id)
    return ordered if plan != "gated" else ordered[::GATED_SHARE]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A run as recorded: the same shape as the oracle's answer, plus each task's end time."""

    run_state: str
    tasks: dict[str, dict[str, object]]
    ends: dict[str, str | None]

    def answer(self) -> dict[str, object]:
        return {"run_state": self.run_state, "tasks": self.tasks}


def run_specs(specs: list[DagSpec], gate_every_task: bool = False) -> dict[str, Outcome]:
    """Each DAG's outcome on airstep, by the spec's dag_id. With `gate_every_task`, every task is
    compiled behind a gate (the DAG runs under its own id plus GATED_SUFFIX)."""
    outcomes: dict[str, Outcome] = {}
    suffix = GATED_SUFFIX if gate_every_task else ""
    with tempfile.TemporaryDirectory(prefix="airstep-conformance-") as folder, LocalEngine() as engine:
        for first in range(0, len(specs), CONCURRENT_RUNS):
            batch = []
            for spec in specs[first : first + CONCURRENT_RUNS]:
                renamed = dataclasses.replace(spec, dag_id=spec.dag_id + suffix)
                path = Path(folder) / f"{renamed.dag_id}.py"
                path.write_text(renamed.render("airstep"))
                model, source = load_model(path)
                request = RunRequest(gate_every_task=gate_every_task)
                batch.append((spec.dag_id, engine.start(model, source, request), model.dag_id))
            for dag_id, started, run_dag_id in batch:
                engine.finish(started)
                key = RunKey(run_dag_id, started.run_id)
                run = engine.store.get_run(key)
                instances = engine.store.task_instances(key)
                outcomes[dag_id] = Outcome(
                    run.state.value if run else "missing",
                    {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in instances},
                    {ti.task_id: ti.end for ti in instances},
                )
    return outcomes


class Background:
    """Work the tests need, each job in a process of its own (the engine is CPU-bound in one), started
    as soon as the test session knows it needs it, so that it overlaps the other tests."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future[Any]] = {}

    def submit(self, name: str, job: Callable[..., Any], *args: Any) -> None:
        if name in self._futures:
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=JOBS, mp_context=multiprocessing.get_context("spawn"), initializer=os.nice, initargs=(NICE,)
            )
        self._futures[name] = self._pool.submit(job, *args)

    def result(self, name: str, job: Callable[..., Any], *args: Any) -> Any:
        """The job's result (started now, if it was not started before)."""
        self.submit(name, job, *args)
        return self._futures[name].result()

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


BACKGROUND = Background()
JOBS = 3  # the two plans, and the Airflow files (conformance.airflow_file_runs)
# Background work yields the CPU to the tests in the foreground, which are the session's critical path
# (their checks come last, and the background is done well before).
NICE = 10
FILES_JOB = "airflow-files"


def start_plans(specs: list[DagSpec]) -> None:
    for plan in PLANS:
        BACKGROUND.submit(plan, run_specs, planned(plan, specs), plan == "gated")


def run_plans(specs: list[DagSpec]) -> dict[str, dict[str, Outcome]]:
    """`run_specs` for both plans (those already started in the background, if any)."""
    return {plan: BACKGROUND.result(plan, run_specs, planned(plan, specs), plan == "gated") for plan in PLANS}
