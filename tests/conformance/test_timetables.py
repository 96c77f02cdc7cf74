"""airstep plans the runs Airflow 3.3's own timetables plan (airflow_timetables.json, recorded by
record_timetables.py with Airflow's Python): for each schedule, the first runs from its start date
(logical date, data interval, when it fires) and the data interval of a manual run."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from airstep.runtime.scheduling import backfill_runs, latest_run, manual_run, planned_runs, scheduled_run
from airstep.sdk.schedule import parse_schedule
from airstep.timetables import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
)
from conformance.record_timetables import BACKFILL_CASES, RUNS, TIMETABLE_CASES
from conformance.record_timetables import NOW as RECORDED_AT

RECORDED = json.loads(Path(__file__).with_name("airflow_timetables.json").read_text())
RECORDS = RECORDED["schedules"]
BACKFILLS = RECORDED["backfills"]
NOW = datetime.fromisoformat(RECORDED["now"])
NAMES = {
    "timedelta": timedelta,
    "CronTriggerTimetable": CronTriggerTimetable,
    "CronDataIntervalTimetable": CronDataIntervalTimetable,
    "DeltaTriggerTimetable": DeltaTriggerTimetable,
    "DeltaDataIntervalTimetable": DeltaDataIntervalTimetable,
}


def test_every_case_is_recorded():
    assert [r["name"] for r in RECORDS] == [name for name, _, _ in TIMETABLE_CASES]
    assert [r["name"] for r in BACKFILLS] == [case[0] for case in BACKFILL_CASES]
    assert RECORDED["now"] == RECORDED_AT


def _schedule(record: dict):
    return parse_schedule(eval(record["schedule"], NAMES), None)  # noqa: S307 - the cases' own text


def _as_airflow(run) -> dict[str, str]:
    return {
        "logical_date": run.logical_date.isoformat(),
        "data_interval_start": run.data_interval_start.isoformat(),
        "data_interval_end": run.data_interval_end.isoformat(),
        "run_after": run.data_interval_end.isoformat(),  # every timetable fires a run at its end
    }


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_the_first_runs_from_the_start_date_are_airflows(record):
    schedule = _schedule(record)
    start = datetime.fromisoformat(record["start_date"])
    runs = planned_runs("dag", schedule, "UTC", start, limit=RUNS)
    assert [_as_airflow(run) for run in runs] == record["runs"]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_a_schedule_firing_starts_the_run_airflow_plans_for_that_time(record):
    """What the run starter does when EventBridge fires at a run's time."""
    schedule = _schedule(record)
    for planned in record["runs"]:
        run = scheduled_run("dag", schedule, datetime.fromisoformat(planned["run_after"]), "UTC")
        assert _as_airflow(run) == planned


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_a_manual_run_gets_airflows_data_interval(record):
    at = datetime.fromisoformat(record["manual"]["run_after"])
    run = manual_run("dag", at, _schedule(record))
    assert (run.logical_date, run.data_interval_start.isoformat(), run.data_interval_end.isoformat()) == (
        at,
        record["manual"]["start"],
        record["manual"]["end"],
    )


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_a_latest_bound_ends_the_plan_where_airflows_does(record):
    """Airflow stops at `latest` by a trigger timetable's fire time, an interval timetable's logical
    date (the bound a backfill's to-date sets)."""
    schedule = _schedule(record)
    start = datetime.fromisoformat(record["start_date"])
    third = record["runs"][min(2, len(record["runs"]) - 1)]
    bound = "run_after" if record["timetable"] in ("CronTriggerTimetable", "DeltaTriggerTimetable") else "logical_date"
    latest = datetime.fromisoformat(third[bound])
    runs = planned_runs("dag", schedule, "UTC", start, latest=latest)
    assert [_as_airflow(run) for run in runs] == record["runs"][: min(3, len(record["runs"]))]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_without_catchup_the_first_run_is_airflows(record):
    """catchup=False: the latest run whose time has come (or the first after a start date still ahead)."""
    run = latest_run("dag", _schedule(record), "UTC", datetime.fromisoformat(record["start_date"]), NOW)
    assert _as_airflow(run) == record["without_catchup"]


@pytest.mark.parametrize("record", BACKFILLS, ids=lambda r: r["name"])
def test_a_backfill_plans_the_runs_airflows_backfill_plans(record):
    """Both ends inclusive, only intervals that have ended by now, backwards on request, and run ids
    that say the run is a backfill's."""
    runs = backfill_runs(
        "dag",
        _schedule(record),
        "UTC",
        datetime.fromisoformat(record["from_date"]),
        datetime.fromisoformat(record["to_date"]),
        NOW,
        backwards=record["run_backwards"],
    )
    assert [_as_airflow(run) for run in runs] == record["runs"]
    assert all(run.run_id == f"backfill__{run.logical_date.isoformat()}" for run in runs)
    assert {run.run_type.value for run in runs} <= {"backfill"}
