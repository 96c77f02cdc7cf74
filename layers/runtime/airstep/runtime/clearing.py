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
from datetime import datetime, timedelta
from typing import Any

from airstep.contract import DagRun
from airstep.model import DagModel
from airstep.runtime.store import MetadataStore, RunKey, RunRecord, TaskInstance
from airstep.states import RunState, TaskState

FAILED_TO_CLEAR = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})  # Airflow's only_failed
MARKABLE = frozenset({TaskState.SUCCESS, TaskState.FAILED})
LAMBDA_MAX_SECONDS = 900


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
    *,
    only_failed: bool = False,
) -> Cleared:
    """Clear `task_ids` in an ended run and queue the run again: its next execution (the returned
    run, one clear number on) is to be started by the caller (admission in AWS, the local engine
    here). `run`: what runs again, when not the run as recorded (a backfill redoing a run gives its
    own run type and conf); `only_failed`: clear only the instances that failed (of a mapped task,
    the failed map indexes). The run is claimed first, by one conditional write that also records
    what the clear resets: a concurrent clear loses, and one cut short is finished by `resume_clear`."""
    _require_ended(record)
    run = run or _recorded_run(record)
    if not task_ids:
        return Cleared([], None)
    return _claimed(store, record, run, task_ids, FAILED_TO_CLEAR if only_failed else None, None, now)


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
    key = RunKey(record.dag_id, record.run_id)
    downstream = Selection((task_id,), downstream=True, only_failed=True)
    to_clear = [t for t in tasks_to_clear(model, downstream, store.task_instances(key)) if t != task_id]
    if not to_clear:  # nothing runs again: the run keeps its state, as in Airflow
        store.mark_instances(key, task_id, state, now)
        return Cleared([], None)
    return _claimed(store, record, _recorded_run(record), to_clear, FAILED_TO_CLEAR, f"{task_id} {state.value}", now)


def resume_clear(store: MetadataStore, record: RunRecord, now: str) -> Cleared | None:
    """Finish a clear that stopped after claiming its run and before the run started again (the
    same tasks, the same mark); None if the run is not waiting on such a clear."""
    waiting = record.state is RunState.QUEUED and record.exec_status is None
    if not (waiting and record.clear_number and record.clearing is not None):
        return None
    run = _recorded_run(record)
    only = frozenset(TaskState(s) for s in record.clearing_only) if record.clearing_only is not None else None
    return _reset(store, run, list(record.clearing), only, record.marking, now)


def _claimed(
    store: MetadataStore,
    record: RunRecord,
    run: DagRun,
    task_ids: list[str],
    only: frozenset[TaskState] | None,
    marking: str | None,
    now: str,
) -> Cleared:
    again = dataclasses.replace(run, clear_number=record.clear_number + 1)
    states = sorted(s.value for s in only) if only is not None else None
    if not store.claim_clear(again, task_ids, states, marking, now):
        raise ClearError(f"run {record.run_id!r} changed while it was being cleared: look at it and clear again")
    return _reset(store, again, task_ids, only, marking, now)


def _reset(
    store: MetadataStore,
    run: DagRun,
    task_ids: list[str],
    only: frozenset[TaskState] | None,
    marking: str | None,
    now: str,
) -> Cleared:
    """The instance writes of a claimed clear (each can be repeated)."""
    key = RunKey(run.dag_id, run.run_id)
    if marking is not None:
        task_id, state = marking.split(" ", 1)
        store.mark_instances(key, task_id, TaskState(state), now)
    store.clear_instances(key, task_ids, only)
    store.delete_gates(key)  # the next execution registers its own
    return Cleared(task_ids, run)


def execution_ended(sfn: Any, record: RunRecord) -> bool:
    """Whether the run's last execution has ended: its final state is recorded by the run's finalize
    step a moment before the execution itself ends."""
    if record.exec_status not in (None, "RUNNING") or record.execution_arn is None:
        return True
    return bool(sfn.describe_execution(executionArn=record.execution_arn)["status"] != "RUNNING")


def not_yet_rerunnable(sfn: Any, record: RunRecord, now: datetime) -> str | None:
    """Why a deployed run cannot be cleared yet (None: it can). An execution that timed out or was
    stopped may leave task runners at work for up to Lambda's 15 minutes, writing to the run."""
    if not execution_ended(sfn, record):
        return "its execution is still running; clear it once it has ended"
    if record.exec_status in ("TIMED_OUT", "ABORTED") and record.end_date:
        settled = datetime.fromisoformat(record.end_date) + timedelta(seconds=LAMBDA_MAX_SECONDS)
        if now < settled:
            return (
                f"its execution {record.exec_status.lower().replace('_', ' ')} at {record.end_date} and its task "
                f"runners may still be at work until {settled.isoformat(timespec='seconds')}: clear it after that"
            )
    return None


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
