"""`airstep logs`: a try's log (what its code printed and logged, and the traceback that failed it),
kept locally beside the run records or, for a deployed stack, in CloudWatch Logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from airstep.contract import DEFAULT_QUEUE, parse_time
from airstep.runtime import task_logs
from airstep.runtime.store import RunKey, RunRecord, TaskInstance
from airstep.runtime.store.task_instances import instance_label
from airstep_cli.errors import UserError
from airstep_cli.metadata import LOCAL_STATE, Target, deployed_model, find_run, open_target
from airstep_cli.options import RegionOption, StackOption
from airstep_cli.output import fail

LOCAL_LOGS = LOCAL_STATE.parent / "logs"
# A try's lines are looked for from its run's start to its end, give or take this (clocks, buffering)
CLOCK_SLACK = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class TryLog:
    """One try's log, and how many tries its task instance has had."""

    key: task_logs.TryKey
    tries: int
    text: str | None  # None: the try printed and logged nothing (or its log is gone)


def try_log(target: Target, run: RunRecord, task_id: str, map_index: int = -1, try_number: int | None = None) -> TryLog:
    """A try of a task instance of the run (its latest by default); UserError if there is no such try."""
    instances = target.store.task_instances(RunKey(run.dag_id, run.run_id))
    key, tries = choose_try(instances, run, task_id, map_index, try_number)
    if target.stack is None:
        return TryLog(key, tries, task_logs.read_file(LOCAL_LOGS, key))
    return TryLog(key, tries, cloudwatch_log(target, run, key))


def choose_try(
    instances: list[TaskInstance], run: RunRecord, task_id: str, map_index: int, try_number: int | None
) -> tuple[task_logs.TryKey, int]:
    """Which try of a task instance of the run (its latest unless `try_number`), and how many tries it
    has had; UserError saying why if there is no such try."""
    found = {(t.task_id, t.map_index): t for t in instances}
    instance = found.get((task_id, map_index))
    label = instance_label(task_id, map_index)
    if instance is None or instance.try_number < 1:
        known = ", ".join(sorted({t for t, _ in found}))
        raise UserError([f"run {run.run_id!r} has no try of {label!r}" + (f" (its tasks: {known})" if known else "")])
    number = instance.try_number if try_number is None else try_number
    if not 1 <= number <= instance.try_number:
        raise UserError([f"try {number}: {label} has had tries 1 to {instance.try_number}"])
    return task_logs.TryKey(run.dag_id, run.run_id, task_id, map_index, number), instance.try_number


def cloudwatch_log(target: Target, run: RunRecord, key: task_logs.TryKey) -> str | None:
    """A try's log from the stack's CloudWatch Logs (searched from its run's start to its end)."""
    if target.task_log_group is None:
        raise UserError([f"--stack {target.stack}: its template predates task logs (no TaskLogGroupName output)"])
    record = target.store.get_dag(run.dag_id)
    task = deployed_model(record, target.region).task_map.get(key.task_id) if record and record.model else None
    queue = task.queue if task is not None else DEFAULT_QUEUE  # a task since removed: the default executor's
    group = target.task_log_group if queue == DEFAULT_QUEUE else f"{target.task_log_group}-{queue}"
    started = parse_time(run.start_date) or datetime.now(UTC)
    ended = parse_time(run.end_date) or datetime.now(UTC)
    fields = f'$.{task_logs.MARKER} IS TRUE && $.run_id = "{key.run_id}" && $.task_id = "{key.task_id}"'
    pages = target.logs.get_paginator("filter_log_events").paginate(
        logGroupName=group,
        startTime=int((started - CLOCK_SLACK).timestamp() * 1000),
        endTime=int((ended + CLOCK_SLACK).timestamp() * 1000),
        filterPattern=f"{{ {fields} && $.try_number = {key.try_number} }}",
    )
    return task_logs.read_events([event for page in pages for event in page["events"]], key)


def logs(
    run_id: Annotated[str, typer.Argument(help="the run")],
    task_id: Annotated[str, typer.Argument(help="the task (group.task inside a task group)")],
    try_number: Annotated[int | None, typer.Option("--try", help="which try (default: the latest)")] = None,
    map_index: Annotated[int, typer.Option(help="a mapped task's instance")] = -1,
    dag_id: Annotated[str | None, typer.Option(help="the DAG, if several have this run_id")] = None,
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Print a try's log: what its code printed and logged, and the traceback that failed it."""
    try:
        with open_target(stack, region) as target:
            found = try_log(target, find_run(target.store, run_id, dag_id), task_id, map_index, try_number)
    except UserError as exc:
        fail(exc.lines)
    if found.text is None:
        label = instance_label(task_id, map_index)
        typer.echo(f"try {found.key.try_number} of {label} printed and logged nothing", err=True)
        return
    typer.echo(found.text, nl=False)
