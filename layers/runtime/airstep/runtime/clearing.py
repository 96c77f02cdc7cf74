"""Clear and mark: Airflow's way of re-running part of a run that has ended.

Clearing tasks gives their instances no state (their try numbers stay, their retries count afresh)
and queues the run again; the run's next execution runs the cleared tasks, while every task that
kept its state reports what it recorded, so downstream trigger rules and XComs see them as before.
Marking a task success or failed sets every instance of it, then clears the failed and
upstream_failed tasks downstream of it so that they run again (Airflow's set_task_instance_state).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airstep.contract import DagRun
from airstep.model import DagModel
from airstep.runtime.store import MetadataStore, RunKey, RunRecord, TaskInstance
from airstep.states import TaskState

FAILED_TO_CLEAR = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})  # Airflow's only_failed
MARKABLE = frozenset({TaskState.SUCCESS, TaskState.FAILED})


class ClearError(ValueError):
    """A clear or mark that cannot be done as asked (the message says why, naming the run or task)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which tasks of a run to clear: the named ones (none named: every task), with their upstream or
    downstream tasks, or only those that failed."""

    task_ids: tuple[str, ...] = ()
    upstream: bool = False
    downstream: bool = False
    only_failed: bool = False


@dataclass(frozen=True, slots=True)
class Cleared:
    """What a clear did: the tasks whose instances lost their state, and the run as it runs again
    (None when nothing was cleared and the run stays as it was)."""

    task_ids: list[str]
    run: DagRun | None


def tasks_to_clear(model: DagModel, selection: Selection, instances: Iterable[TaskInstance]) -> list[str]:
    """The tasks a clear resets, in the DAG's order: Airflow's `partial_subset` of the named tasks
    (with upstream or downstream tasks, and the setups and teardowns they need), then, with
    only_failed, those with a failed or upstream_failed instance."""
    unknown = [t for t in selection.task_ids if t not in model.task_map]
    if unknown:
        raise ClearError(f"DAG {model.dag_id!r} has no task {', '.join(map(repr, unknown))}")
    chosen = set(selection.task_ids) if selection.task_ids else set(model.task_map)
    if selection.task_ids:
        chosen |= _relatives(model, chosen, selection.upstream, selection.downstream)
        chosen |= _relatives(model, chosen, upstream=False, downstream=False)  # DAG.clear's own pass
    if selection.only_failed:
        failed = {ti.task_id for ti in instances if ti.state in FAILED_TO_CLEAR}
        chosen &= failed
    return [t.task_id for t in model.tasks if t.task_id in chosen]


def _relatives(model: DagModel, matched: set[str], upstream: bool, downstream: bool) -> set[str]:
    """What Airflow's `partial_subset` adds to `matched`."""
    tasks = model.task_map
    added: set[str] = set()
    for task_id in matched:
        task = tasks[task_id]
        if downstream:
            for relative in model.relatives(task_id, upstream=False):
                added.add(relative)
                if relative not in matched and not (tasks[relative].is_setup or tasks[relative].is_teardown):
                    added |= _setups_and_teardowns(model, relative)
        if upstream:
            for relative in model.relatives(task_id, upstream=True):
                added.add(relative)
                if tasks[relative].is_setup:
                    added |= {t for t in _teardowns(model, relative) if t != task_id}
        elif not (task.is_setup or task.is_teardown):
            added |= _setups_and_teardowns(model, task_id)
        if task.is_setup and not downstream:
            added |= _teardowns(model, task_id)
    return added


def _teardowns(model: DagModel, setup: str) -> set[str]:
    tasks = model.task_map
    return {d for d in model.downstream()[setup] if tasks[d].is_teardown}


def _setups_and_teardowns(model: DagModel, task_id: str) -> set[str]:
    """Airflow's `get_upstreams_only_setups_and_teardowns`: the task's relevant setups and their
    teardowns (but the task itself)."""
    found: set[str] = set()
    for setup in model.relevant_setups(task_id):
        found.add(setup)
        found |= {t for t in _teardowns(model, setup) if t != task_id}
    return found


def clear_run(
    store: MetadataStore,
    record: RunRecord,
    task_ids: list[str],
    now: str,
    run: DagRun | None = None,
) -> Cleared:
    """Clear `task_ids` in an ended run and queue the run again: its next execution (the returned
    run, one clear number on) is to be started by the caller (admission in AWS, the local engine
    here). `run`: what runs again, when not the run as recorded (a backfill redoing a run gives its
    own run type and conf). Each step can be repeated: a clear that stopped half-way is finished by
    clearing again."""
    _require_ended(record)
    run = run or _recorded_run(record)
    if not task_ids:
        return Cleared([], None)
    key = RunKey(record.dag_id, record.run_id)
    store.clear_instances(key, task_ids)
    store.delete_gates(key)  # the next execution registers its own
    if not store.requeue_cleared_run(key, record.clear_number + 1, now):
        raise ClearError(f"run {record.run_id!r} changed while it was being cleared: look at it and clear again")
    return Cleared(task_ids, dataclasses.replace(run, clear_number=record.clear_number + 1))


def mark_task(
    store: MetadataStore, model: DagModel, record: RunRecord, task_id: str, state: TaskState, now: str
) -> Cleared:
    """Set every instance of `task_id` to `state` (success or failed), then clear the failed and
    upstream_failed tasks downstream of it (so they run again) as Airflow's set_task_instance_state."""
    if state not in MARKABLE:
        raise ClearError(f"a task can be marked success or failed, not {state.value}")
    if task_id not in model.task_map:
        raise ClearError(f"DAG {model.dag_id!r} has no task {task_id!r}")
    _require_ended(record)
    _recorded_run(record)  # before anything changes: what runs again if a downstream task is cleared
    key = RunKey(record.dag_id, record.run_id)
    store.mark_instances(key, task_id, state, now)
    downstream = Selection((task_id,), downstream=True, only_failed=True)
    instances = store.task_instances(key)
    to_clear = [t for t in tasks_to_clear(model, downstream, instances) if t != task_id]
    return clear_run(store, record, to_clear, now)


def execution_ended(sfn: Any, record: RunRecord) -> bool:
    """Whether the run's last execution has ended: its final state is recorded by the run's finalize
    step a moment before the execution itself ends."""
    if record.exec_status not in (None, "RUNNING") or record.execution_arn is None:
        return True
    return bool(sfn.describe_execution(executionArn=record.execution_arn)["status"] != "RUNNING")


def _require_ended(record: RunRecord) -> None:
    if not record.ended:
        raise ClearError(
            f"run {record.run_id!r} is {record.state.value}: clear or mark its tasks once it has ended "
            "(airstep does not change a run while its execution runs)"
        )


def _recorded_run(record: RunRecord) -> DagRun:
    run = record.dag_run()
    if run is None:
        raise ClearError(f"run {record.run_id!r} was recorded before airstep kept what a run needs to run again")
    return run
