"""Runs whose time came while nothing could start them: before a DAG's first deploy (from its
start_date) and while it was paused (the runs its schedule would have fired meanwhile). EventBridge Scheduler only fires
from now on, so these are started here, as Airflow 3's scheduler creates them: with `catchup=True`
every run planned in between, oldest first; without, only the latest. They are admitted like any
run (airstep.runtime.admission): `max_active_runs` holds and the rest wait queued, holding nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airstep.contract import DagRun, Schedule
from airstep.runtime.admission import Admission, admit
from airstep.runtime.scheduling import TRIGGER_KINDS, latest_run, planned_runs
from airstep.runtime.store import MetadataStore

MAX_CATCHUP_RUNS = 1_000  # queued by one deploy or unpause; older gaps are what `airstep backfill` is for


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What a catch-up started or queued, and whether more runs were missed than it took."""

    admitted: list[Admission]
    truncated: bool = False


def missed_runs(
    dag_id: str,
    schedule: Schedule,
    zone: str,
    start_date: datetime,
    now: datetime,
    catchup: bool,
    *,
    after: datetime | None = None,
    end_date: datetime | None = None,
) -> list[DagRun]:
    """The runs the schedule plans from `start_date` (its grid) that fired by `now` (their intervals
    ended), and after `after` when given (a pause: what its schedule would have fired meanwhile), none
    past the DAG's end_date: all of them with catchup, oldest first (at most MAX_CATCHUP_RUNS + 1),
    else only the latest (Airflow 3's catchup=False)."""
    if not catchup and after is None:  # a first deploy: Airflow's own choice of the latest run
        run = latest_run(dag_id, schedule, zone, start_date, now)
        bound = run.data_interval_end if schedule.kind in TRIGGER_KINDS else run.logical_date
        latest = min(now, end_date) if end_date else now
        ended = bound is not None and bound <= latest and run.data_interval_end is not None
        return [run] if ended and run.data_interval_end <= now else []
    runs = []
    for run in planned_runs(dag_id, schedule, zone, start_date, min(now, end_date) if end_date else now):
        fired = run.data_interval_end
        if fired is None or fired > now or (after is not None and fired <= after):
            continue
        runs.append(run)
        if catchup and len(runs) > MAX_CATCHUP_RUNS:
            break
    return runs if catchup else runs[-1:]


def catch_up(
    store: MetadataStore,
    sfn: Any,
    dag_id: str,
    schedule: Schedule,
    zone: str,
    state_machine_arn: str,
    max_active_runs: int,
    *,
    start_date: datetime,
    now: datetime,
    catchup: bool,
    after: datetime | None = None,
    end_date: datetime | None = None,
) -> CatchUp:
    """Start (or queue) the runs missed (after `after`, when given); a run that exists already, or is
    queued already, is left alone."""
    runs = missed_runs(dag_id, schedule, zone, start_date, now, catchup, after=after, end_date=end_date)
    admitted = [admit(store, sfn, run, state_machine_arn, max_active_runs) for run in runs[:MAX_CATCHUP_RUNS]]
    return CatchUp([a for a in admitted if not a.duplicate], truncated=len(runs) > MAX_CATCHUP_RUNS)
