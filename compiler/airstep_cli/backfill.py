"""`airstep backfill`: the runs Airflow 3.3's backfill plans for a window, and which of them to run
given the runs a DAG already has (its `--reprocess-behavior`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from airstep.contract import DagRun, Schedule, ScheduleKind, parse_time
from airstep.runtime.scheduling import backfill_runs
from airstep.runtime.store import RunRecord
from airstep.states import RunState, RunType
from airstep_cli.errors import UserError
from airstep_cli.options import json_object

DEFAULT_MAX_ACTIVE_RUNS = 10  # Airflow's `airflow backfill create --max-active-runs` default


class Reprocess(StrEnum):
    """What a backfill does with a logical date that already has a run (Airflow's ReprocessBehavior).
    A run still in flight is never touched."""

    NONE = "none"  # keep it
    FAILED = RunState.FAILED.value  # run it again if it failed
    COMPLETED = "completed"  # run it again if it ended, whatever its state


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    from_date: datetime
    to_date: datetime
    max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS
    reprocess: Reprocess = Reprocess.NONE
    backwards: bool = False
    conf: dict[str, Any] = field(default_factory=dict)


def backfill_options(
    from_date: str,
    to_date: str,
    max_active_runs: int,
    reprocess: str,
    backwards: bool,
    conf: str | None,
    now: datetime,
) -> BackfillOptions:
    """The options, checked as Airflow checks them; UserError naming the option otherwise."""
    dates = []
    for option, value in (("--from-date", from_date), ("--to-date", to_date)):
        try:
            when = parse_time(value)
        except ValueError:
            when = None
        if when is None:
            raise UserError([f"{option}: {value!r} is not an ISO-8601 date or date-time"])
        dates.append(when)
    start, end = dates
    if start > end:
        raise UserError([f"--from-date ({start.isoformat()}) must not be after --to-date ({end.isoformat()})"])
    if start >= now and end >= now:
        raise UserError(["--from-date and --to-date are both in the future: a backfill runs intervals that have ended"])
    if max_active_runs < 1:
        raise UserError([f"--max-active-runs: must be at least 1, got {max_active_runs}"])
    try:
        behaviour = Reprocess(reprocess)
    except ValueError:
        raise UserError([f"--reprocess-behavior: {reprocess!r} is not one of none, failed, completed"]) from None
    return BackfillOptions(start, end, max_active_runs, behaviour, backwards, json_object("--dag-run-conf", conf))


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One logical date of the window: the run to start, or why none starts (`reason`: the DAG
    already has a run there, `existing`)."""

    run: DagRun
    existing: RunRecord | None = None
    reason: str | None = None  # "already_exists" | "in_flight" (Airflow's exception reasons)

    @property
    def attempted(self) -> bool:
        return self.reason is None

    def to_json(self, state: str | None = None) -> dict[str, Any]:
        run = self.run
        shown = state or (self.existing.state.value if self.existing and self.reason else RunState.QUEUED.value)
        entry = {
            "run_id": run.run_id,
            "logical_date": run.logical_date.isoformat() if run.logical_date else None,
            "data_interval_start": run.data_interval_start.isoformat() if run.data_interval_start else None,
            "data_interval_end": run.data_interval_end.isoformat() if run.data_interval_end else None,
            "state": shown,
        }
        return {**entry, "reason": self.reason} if self.reason else entry


def plan_backfill(
    dag_id: str,
    schedule: Schedule | None,
    zone: str,
    options: BackfillOptions,
    runs_at: Callable[[list[datetime]], dict[str, RunRecord]],
    now: datetime,
) -> list[PlannedRun]:
    """Every run the window plans, in the order they start. `runs_at(logical_dates)`: the DAG's runs
    at those dates, by logical date (ISO-8601, UTC). A run to redo keeps its run_id (Airflow clears
    the run it had and marks it a backfill's); a logical date with a run still going is left alone."""
    if schedule is None or schedule.kind in (ScheduleKind.ONCE, ScheduleKind.ASSETS):
        described = schedule.describe() if schedule else "None"
        raise UserError([f"DAG {dag_id!r}: schedule {described} is not periodic, so it has no runs to backfill"])
    runs = backfill_runs(dag_id, schedule, zone, options.from_date, options.to_date, now, options.backwards)
    existing = runs_at([run.logical_date for run in runs if run.logical_date]) if runs else {}
    planned = []
    for run in runs:
        run = replace(run, conf=dict(options.conf))
        record = existing.get(run.logical_date.isoformat()) if run.logical_date else None
        reason = _not_redone(record, options.reprocess) if record else None
        if record is not None:
            run = replace(run, run_id=record.run_id, run_type=RunType.BACKFILL)
        planned.append(PlannedRun(run, record, reason))
    return planned


def _not_redone(record: RunRecord, reprocess: Reprocess) -> str | None:
    if record.state not in (RunState.SUCCESS, RunState.FAILED):
        return "in_flight"
    if reprocess is Reprocess.NONE or (reprocess is Reprocess.FAILED and record.state is not RunState.FAILED):
        return "already_exists"
    return None


def describe_skip(planned: PlannedRun) -> str:
    """Why a logical date gets no run, and how to get one."""
    assert planned.existing is not None and planned.run.logical_date is not None
    at, record = planned.run.logical_date.isoformat(), planned.existing
    if planned.reason == "in_flight":
        return f"{at}: {record.run_id} is still {record.state}; left alone"
    hint = Reprocess.FAILED if record.state is RunState.FAILED else Reprocess.COMPLETED
    return f"{at}: already has {record.run_id} ({record.state}); --reprocess-behavior {hint} runs it again"
