"""Runs whose time came while nothing could start them: before a DAG's first deploy (from its
start_date) and while it was paused (from when it was paused). EventBridge Scheduler only fires
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
    since: datetime,
    now: datetime,
    catchup: bool,
    end_date: datetime | None = None,
) -> list[DagRun]:
    """The runs due in [since, now] (their intervals ended by now, none past the DAG's end_date): all
    of them with catchup, oldest first (at most MAX_CATCHUP_RUNS + 1), else only the latest."""
    latest = min(now, end_date) if end_date else now
    if catchup:
        runs = planned_runs(dag_id, schedule, zone, since, latest, limit=MAX_CATCHUP_RUNS + 1)
    else:
        run = latest_run(dag_id, schedule, zone, since, now)
        bound = run.data_interval_end if schedule.kind in TRIGGER_KINDS else run.logical_date
        runs = [run] if bound is not None and bound <= latest else []
    return [run for run in runs if run.data_interval_end is not None and run.data_interval_end <= now]


def catch_up(
    store: MetadataStore,
    sfn: Any,
    dag_id: str,
    schedule: Schedule,
    zone: str,
    state_machine_arn: str,
    max_active_runs: int,
    *,
    since: datetime,
    now: datetime,
    catchup: bool,
    end_date: datetime | None = None,
) -> CatchUp:
    """Start (or queue) the runs missed since `since`; a run that exists already is left alone."""
    runs = missed_runs(dag_id, schedule, zone, since, now, catchup, end_date)
    admitted = [admit(store, sfn, run, state_machine_arn, max_active_runs) for run in runs[:MAX_CATCHUP_RUNS]]
    return CatchUp([a for a in admitted if not a.duplicate], truncated=len(runs) > MAX_CATCHUP_RUNS)
