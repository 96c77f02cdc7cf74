"""Run the DAG files written for Airflow (tests/conformance/airflow_files/) on the local engine, each
in an engine of its own, and read back what airstep recorded: run in the background while the other
tests run (conformance.airstep_runs.BACKGROUND)."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep.runtime.store import RunKey
from airstep_compiler import DagSource
from airstep_local.engine import LocalEngine, RunRequest
from conformance.recorded import AIRFLOW_FILES

# The oracle runs every DAG at this logical date (its default): templates and logical-date branches
# see the same day in both.
LOGICAL_DATE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """A file's DAG as airstep ran it: the answer in the oracle's shape, and every return value as the
    oracle reads it; or why it could not run."""

    answer: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_files(records: list[dict[str, Any]]) -> dict[str, FileOutcome]:
    """Each recorded DAG's outcome, by dag_id."""
    return {record["dag_id"]: run_file(record) for record in records}


def run_file(record: dict[str, Any]) -> FileOutcome:
    try:
        path = AIRFLOW_FILES / record["file"]
        loaded = load_dag_file(path)
        model = DagModel.from_dag(loaded.dags[record["dag_id"]])
        with LocalEngine() as engine:
            source = DagSource(str(path), loaded.version)
            if any(task.trigger for task in model.tasks):  # the file's DAGs it may trigger, deployed beside it
                others = [(DagModel.from_dag(dag), source) for dag in loaded.dags.values()]
                engine.deploy_triggerable(others, RunRequest(fast_retries=True))
            result = engine.run(model, source, RunRequest(LOGICAL_DATE, fast_retries=True))
            values = return_values(engine, RunKey(result.dag_id, result.run_id), model)
            engine.triggered_results()  # (the runs it triggered end before the engine does)
    except Exception:  # noqa: BLE001 - said by the file's test, not by every test of the job
        return FileOutcome(error=traceback.format_exc())
    tasks = {t.label: {"state": str(t.state), "try_number": t.try_number} for t in result.tasks}
    answer = {"run_state": result.state.value, "tasks": tasks}
    return FileOutcome(answer, {task_id: as_the_oracle_reads(value) for task_id, value in values.items()})


def return_values(engine: LocalEngine, key: RunKey, model: DagModel) -> dict[str, object]:
    """Every instance's return value by its Airflow name (`task`, or `task[i]` for a mapped instance)."""
    values = engine.store.get_xcoms(key, [t.task_id for t in model.tasks if not t.mapped])
    for task in model.tasks:
        if task.mapped:
            _, instances = engine.store.get_mapped(key, task.task_id)
            values |= {ti.label: ti.xcom() for ti in instances if ti.xcoms and '"return_value"' in ti.xcoms}
    return values


def as_the_oracle_reads(value: object) -> object:
    """A return value as the fixture holds it: the oracle reads XComs back with Airflow's
    XComModel.deserialize_value, which JSON-decodes a string when it can ("3" becomes 3; a task
    pulling the XCom in Airflow gets the string)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
