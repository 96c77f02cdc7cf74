"""Airflow's schedule semantics at run time: the runs a schedule plans, the run a schedule's fire time
starts, and manual runs, as Airflow 3.3's timetables define them (tests/conformance/test_timetables.py
holds them to Airflow's own planner).

Which timetable a DAG gets (as in Airflow 3, `[scheduler] create_cron_data_intervals = False`):

- a cron string or preset: `CronTriggerTimetable`. A run fires at each cron time; its logical date is
  that time and its data interval is empty ([t, t]), or with `interval=` [t - interval, t] (the
  logical date is then the interval's start, as Airflow's).
- a `timedelta`: `DeltaTriggerTimetable`, the same with fire times `start_date + k * delta`.
- `CronDataIntervalTimetable(cron)` / `DeltaDataIntervalTimetable(delta)`: Airflow 2's behaviour, on
  request. The run covering [prev, t) fires at t; logical date = data_interval_start = prev.
- `"@once"`: one run at start_date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from airstep.contract import DagRun, Schedule, ScheduleKind
from airstep.states import RunType

TRIGGER_KINDS = (ScheduleKind.CRON_TRIGGER, ScheduleKind.DELTA_TRIGGER)


def scheduled_run(
    dag_id: str, schedule: Schedule, fired_at: datetime, zone: str = "UTC", run_type: RunType = RunType.SCHEDULED
) -> DagRun:
    """The run a schedule firing at `fired_at` starts (Airflow's logical date and data interval); a
    backfill plans the same runs under its own run type."""
    fired = fired_at.astimezone(UTC).replace(microsecond=0)
    start = _interval_start(schedule, fired, zone)
    return DagRun(dag_id, f"{run_type}__{start.isoformat()}", run_type, start, start, fired)


def latest_run(dag_id: str, schedule: Schedule, zone: str, earliest: datetime, now: datetime) -> DagRun:
    """The first run of a DAG without catchup (Airflow's `catchup=False`): the latest whose time has
    come by `now`, or the first after `earliest` (its start date) when that is later."""
    now = now.astimezone(UTC)
    earliest = earliest.astimezone(UTC)
    if schedule.kind is ScheduleKind.ONCE:
        return scheduled_run(dag_id, schedule, earliest, zone)
    if schedule.kind is ScheduleKind.DELTA_TRIGGER:
        return scheduled_run(dag_id, schedule, max(now, earliest), zone)
    if schedule.kind is ScheduleKind.CRON_TRIGGER:
        fire = max(_cron_at_or_before(schedule, now, zone), _cron_at_or_after(schedule, earliest, zone))
        return scheduled_run(dag_id, schedule, fire, zone)
    if schedule.kind is ScheduleKind.CRON_INTERVAL:  # the latest interval that has ended
        start = _cron_step(schedule, _cron_at_or_before(schedule, now, zone), zone, forward=False)
        start = max(start, _cron_at_or_after(schedule, earliest, zone))
        return scheduled_run(dag_id, schedule, _cron_step(schedule, start, zone, forward=True), zone)
    seconds = schedule.seconds or 0  # a data-interval delta: the latest interval on the epoch's grid
    start = max(now - timedelta(seconds=now.timestamp() % seconds + seconds), earliest)
    return scheduled_run(dag_id, schedule, start + timedelta(seconds=seconds), zone)


def backfill_runs(
    dag_id: str,
    schedule: Schedule,
    zone: str,
    from_date: datetime,
    to_date: datetime,
    now: datetime,
    backwards: bool = False,
) -> list[DagRun]:
    """The runs Airflow 3.3's backfill plans for [from_date, to_date] (both ends inclusive, bounded as
    the schedule's own plan is) of which the data interval has ended by `now`, oldest first unless
    `backwards`. The DAG's start and end dates do not bound a backfill (as in Airflow)."""
    planned = planned_runs(dag_id, schedule, zone, from_date, to_date, run_type=RunType.BACKFILL)
    ended = [run for run in planned if run.data_interval_end is not None and run.data_interval_end < now]
    return ended[::-1] if backwards else ended


def planned_runs(
    dag_id: str,
    schedule: Schedule,
    zone: str,
    earliest: datetime,
    latest: datetime | None = None,
    limit: int = 0,
    run_type: RunType = RunType.SCHEDULED,
) -> list[DagRun]:
    """The runs the schedule plans from `earliest` (a start date) on, oldest first, as Airflow's
    `next_dagrun_info` with catchup, up to `latest` (Airflow's bound: a trigger timetable's fire time,
    an interval timetable's logical date), at most `limit` (0: no limit)."""
    runs: list[DagRun] = []
    fire = _first_fire(schedule, earliest.astimezone(UTC), zone)
    while fire is not None and (not limit or len(runs) < limit):
        run = scheduled_run(dag_id, schedule, fire, zone, run_type)
        bounded = fire if schedule.kind in TRIGGER_KINDS else run.logical_date
        if latest is not None and bounded > latest:
            break
        runs.append(run)
        fire = None if schedule.kind is ScheduleKind.ONCE else _next_fire(schedule, fire, zone)
    return runs


def manual_run(
    dag_id: str,
    logical_date: datetime,
    schedule: Schedule | None,
    conf: dict[str, Any] | None = None,
    zone: str = "UTC",
) -> DagRun:
    """A manual run at `logical_date`, with the data interval Airflow infers for it (the timetable's
    `infer_manual_data_interval`)."""
    # in UTC, as Airflow keeps dates: a run id names its logical date one way only
    when = logical_date.astimezone(UTC) if logical_date.tzinfo else logical_date.replace(tzinfo=UTC)
    start, end = when, when
    if schedule is not None and schedule.kind is ScheduleKind.CRON_INTERVAL:
        end = _cron_at_or_before(schedule, when, zone)
        start = _cron_step(schedule, end, zone, forward=False)
    elif schedule is not None and schedule.timed:
        start = _interval_start(schedule, when, zone)
    return DagRun(dag_id, f"{RunType.MANUAL}__{when.isoformat()}", RunType.MANUAL, when, start, end, dict(conf or {}))


def _interval_start(schedule: Schedule, end: datetime, zone: str) -> datetime:
    """The start of the data interval of a run that fires at `end`."""
    if schedule.kind in TRIGGER_KINDS:
        return end - timedelta(seconds=schedule.interval or 0)
    if schedule.kind is ScheduleKind.CRON_INTERVAL:
        return _cron_step(schedule, end, zone, forward=False)
    if schedule.kind is ScheduleKind.DELTA_INTERVAL:
        return end - timedelta(seconds=schedule.seconds or 0)
    return end


def _first_fire(schedule: Schedule, earliest: datetime, zone: str) -> datetime | None:
    """When the first run from `earliest` fires (Airflow aligns a cron schedule's first run to the
    next cron time at or after it; a delta schedule's is `earliest` itself, or one delta later for an
    interval timetable, whose run fires at its interval's end)."""
    if schedule.kind in (ScheduleKind.ONCE, ScheduleKind.DELTA_TRIGGER):
        return earliest
    if schedule.kind is ScheduleKind.DELTA_INTERVAL:
        return earliest + timedelta(seconds=schedule.seconds or 0)
    first = _cron_at_or_after(schedule, earliest, zone)
    return _cron_step(schedule, first, zone, forward=True) if schedule.kind is ScheduleKind.CRON_INTERVAL else first


def _next_fire(schedule: Schedule, fire: datetime, zone: str) -> datetime:
    if schedule.kind in (ScheduleKind.DELTA_TRIGGER, ScheduleKind.DELTA_INTERVAL):
        return fire + timedelta(seconds=schedule.seconds or 0)
    return _cron_step(schedule, fire, zone, forward=True)


def _cron_step(schedule: Schedule, moment: datetime, zone: str, *, forward: bool) -> datetime:
    """The cron time strictly after (or before) `moment`, on the wall clock of the schedule's
    timezone, as Airflow's CronMixin computes it."""
    assert schedule.cron is not None
    tz = ZoneInfo(schedule.timezone or zone)
    found = croniter(schedule.cron, moment.astimezone(tz).replace(tzinfo=None))
    while True:  # a time moved forward out of the hour clocks skip may land on `moment` itself
        step = _localized(found.get_next(datetime) if forward else found.get_prev(datetime), tz).astimezone(UTC)
        if (step > moment) if forward else (step < moment):
            return step


def _localized(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in `tz` as pendulum (Airflow) places it: of a time that occurs twice (the
    hour clocks go back), the later; a time that does not exist (clocks go forward) moves forward."""
    later = wall.replace(tzinfo=tz, fold=1)
    if later.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return later
    return wall.replace(tzinfo=tz, fold=0)


def _cron_at_or_after(schedule: Schedule, moment: datetime, zone: str) -> datetime:
    following = _cron_step(schedule, moment, zone, forward=True)
    return moment if _cron_step(schedule, following, zone, forward=False) == moment else following


def _cron_at_or_before(schedule: Schedule, moment: datetime, zone: str) -> datetime:
    preceding = _cron_step(schedule, moment, zone, forward=False)
    return moment if _cron_step(schedule, preceding, zone, forward=True) == moment else preceding
