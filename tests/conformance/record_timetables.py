"""Record what Airflow 3.3's own timetables plan for each schedule in TIMETABLE_CASES: the first runs
from a start date with catchup (logical date, data interval, run after), the run a DAG without catchup
starts at NOW, and the data interval of a manual run; and the runs Airflow's backfill plans for each
window in BACKFILL_CASES at NOW (`airflow.models.backfill._get_info_list`). Run it with Airflow's
Python (its own virtualenv, never an airstep dependency):

    AIRFLOW_HOME=... /path/to/airflow-venv/bin/python tests/conformance/record_timetables.py

It writes airflow_timetables.json beside it; tests/conformance/test_timetables.py holds airstep's
planner to it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

FIXTURE = Path(__file__).with_name("airflow_timetables.json")
RUNS = 6
MANUAL_AT = "2026-03-04T10:15:00+00:00"
NOW = "2026-01-05T12:10:00+00:00"  # what Airflow's clock says while planning catchup=False and backfills
# (case name, the schedule as a DAG file writes it, start_date)
TIMETABLE_CASES = [
    ("daily_preset", "'@daily'", "2026-01-01T00:00:00+00:00"),
    ("hourly_unaligned_start", "'@hourly'", "2026-01-01T05:30:00+00:00"),
    ("weekday_cron", "'0 6 * * 1-5'", "2026-01-01T00:00:00+00:00"),
    ("cron_in_paris", "CronTriggerTimetable('0 2 * * *', timezone='Europe/Paris')", "2026-03-27T00:00:00+00:00"),
    (
        "cron_trigger_with_interval",
        "CronTriggerTimetable('0 3 * * *', timezone='UTC', interval=timedelta(hours=3))",
        "2026-01-01T00:00:00+00:00",
    ),
    ("cron_data_interval", "CronDataIntervalTimetable('0 0 * * *', timezone='UTC')", "2026-01-01T00:00:00+00:00"),
    (
        "cron_data_interval_unaligned",
        "CronDataIntervalTimetable('0 * * * *', timezone='UTC')",
        "2026-01-01T05:30:00+00:00",
    ),
    ("timedelta", "timedelta(hours=6)", "2026-01-01T00:00:00+00:00"),
    ("timedelta_unaligned", "timedelta(minutes=90)", "2026-01-01T05:20:00+00:00"),
    (
        "delta_trigger_with_interval",
        "DeltaTriggerTimetable(timedelta(days=1), interval=timedelta(hours=12))",
        "2026-01-01T00:00:00+00:00",
    ),
    ("delta_data_interval", "DeltaDataIntervalTimetable(timedelta(hours=6))", "2026-01-01T00:00:00+00:00"),
    ("once", "'@once'", "2026-01-01T07:00:00+00:00"),
    # a local time that does not exist on the day clocks go forward, and one that occurs twice
    (
        "paris_spring_forward",
        "CronTriggerTimetable('30 2 * * *', timezone='Europe/Paris')",
        "2026-03-27T00:00:00+00:00",
    ),
    ("paris_fall_back", "CronTriggerTimetable('30 2 * * *', timezone='Europe/Paris')", "2026-10-23T00:00:00+00:00"),
    (
        "paris_intervals_spring",
        "CronDataIntervalTimetable('30 2 * * *', timezone='Europe/Paris')",
        "2026-03-27T00:00:00+00:00",
    ),
    (
        "paris_intervals_fall",
        "CronDataIntervalTimetable('30 2 * * *', timezone='Europe/Paris')",
        "2026-10-23T00:00:00+00:00",
    ),
]

# (case name, schedule, from date, to date, run backwards): backfill windows, both ends inclusive
BACKFILL_CASES = [
    ("daily", "'@daily'", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00", False),
    ("daily_backwards", "'@daily'", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00", True),
    ("daily_into_the_future", "'@daily'", "2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00", False),
    ("daily_unaligned_window", "'@daily'", "2025-12-30T06:00:00+00:00", "2026-01-02T23:00:00+00:00", False),
    ("hourly_window", "'@hourly'", "2026-01-05T08:30:00+00:00", "2026-01-05T13:00:00+00:00", False),
    ("weekday_cron", "'0 6 * * 1-5'", "2025-12-29T00:00:00+00:00", "2026-01-05T23:59:00+00:00", False),
    (
        "cron_trigger_with_interval",
        "CronTriggerTimetable('0 3 * * *', timezone='UTC', interval=timedelta(hours=3))",
        "2026-01-01T00:00:00+00:00",
        "2026-01-04T03:00:00+00:00",
        False,
    ),
    (
        "cron_data_interval",
        "CronDataIntervalTimetable('0 0 * * *', timezone='UTC')",
        "2026-01-01T00:00:00+00:00",
        "2026-01-05T00:00:00+00:00",
        False,
    ),
    (
        "cron_data_interval_unaligned",
        "CronDataIntervalTimetable('0 */6 * * *', timezone='UTC')",
        "2026-01-04T05:30:00+00:00",
        "2026-01-05T12:00:00+00:00",
        False,
    ),
    ("timedelta", "timedelta(hours=6)", "2026-01-04T00:00:00+00:00", "2026-01-05T12:00:00+00:00", False),
    ("timedelta_unaligned", "timedelta(minutes=90)", "2026-01-05T05:20:00+00:00", "2026-01-05T12:20:00+00:00", False),
    (
        "delta_data_interval",
        "DeltaDataIntervalTimetable(timedelta(hours=6))",
        "2026-01-04T00:00:00+00:00",
        "2026-01-05T12:00:00+00:00",
        False,
    ),
    (
        "paris_intervals_across_midnight",
        "CronDataIntervalTimetable('30 2 * * *', timezone='Europe/Paris')",
        "2026-01-01T00:00:00+00:00",
        "2026-01-04T01:30:00+00:00",
        True,
    ),
    ("same_from_and_to", "'@daily'", "2026-01-03T00:00:00+00:00", "2026-01-03T00:00:00+00:00", False),
    ("no_run_in_window", "'@daily'", "2026-01-03T01:00:00+00:00", "2026-01-03T23:00:00+00:00", False),
]


def _info(info) -> dict[str, str]:
    return {
        "logical_date": info.logical_date.isoformat(),
        "data_interval_start": info.data_interval.start.isoformat(),
        "data_interval_end": info.data_interval.end.isoformat(),
        "run_after": info.run_after.isoformat(),
    }


def _frozen_clock():
    """Airflow's planners read `utcnow()` by several names: each answers NOW."""
    import pendulum
    from airflow._shared.timezones import timezone
    from airflow.timetables import interval, trigger

    now = pendulum.parse(NOW)
    for module in (timezone, interval, trigger):
        module.utcnow = lambda: now


def _backfills(names: dict) -> list[dict]:
    import pendulum
    from airflow.models.backfill import _get_info_list
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    records = []
    for name, schedule, start, end, backwards in BACKFILL_CASES:
        dag = DAG(f"backfill_{name}", schedule=eval(schedule, names), start_date=pendulum.datetime(2025, 1, 1))  # noqa: S307
        serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        infos = _get_info_list(
            from_date=pendulum.parse(start), to_date=pendulum.parse(end), reverse=backwards, dag=serialized
        )
        records.append(
            {
                "name": name,
                "schedule": schedule,
                "from_date": start,
                "to_date": end,
                "run_backwards": backwards,
                "runs": [_info(info) for info in infos],
            }
        )
    return records


def main() -> None:
    import pendulum
    from airflow.sdk import (
        DAG,
        CronDataIntervalTimetable,
        CronTriggerTimetable,
        DeltaDataIntervalTimetable,
        DeltaTriggerTimetable,
    )
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    names = {
        "timedelta": timedelta,
        "CronTriggerTimetable": CronTriggerTimetable,
        "CronDataIntervalTimetable": CronDataIntervalTimetable,
        "DeltaTriggerTimetable": DeltaTriggerTimetable,
        "DeltaDataIntervalTimetable": DeltaDataIntervalTimetable,
    }
    _frozen_clock()
    records = []
    for name, schedule, start in TIMETABLE_CASES:
        start_date = pendulum.instance(datetime.fromisoformat(start))
        dag = DAG(f"timetable_{name}", schedule=eval(schedule, names), start_date=start_date, catchup=True)  # noqa: S307
        timetable = coerce_to_core_timetable(dag.timetable)
        restriction = TimeRestriction(earliest=start_date, latest=None, catchup=True)
        runs, last = [], None
        for _ in range(RUNS):
            info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
            if info is None:
                break
            runs.append(_info(info))
            last = info.data_interval
        latest = timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=start_date, latest=None, catchup=False),
        )
        manual = timetable.infer_manual_data_interval(run_after=pendulum.parse(MANUAL_AT))
        records.append(
            {
                "name": name,
                "schedule": schedule,
                "start_date": start,
                "timetable": type(timetable).__name__,
                "runs": runs,
                "without_catchup": _info(latest) if latest else None,
                "manual": {"run_after": MANUAL_AT, "start": manual.start.isoformat(), "end": manual.end.isoformat()},
            }
        )
    backfills = _backfills(names)
    FIXTURE.write_text(json.dumps({"now": NOW, "schedules": records, "backfills": backfills}, indent=1) + "\n")
    print(f"{len(records)} schedules and {len(backfills)} backfills recorded to {FIXTURE.name}")


if __name__ == "__main__":
    main()
