"""Record what Airflow 3.3's own timetables plan for each schedule in TIMETABLE_CASES: the first runs
from a start date with catchup (logical date, data interval, run after) and the data interval of a
manual run. Run it with Airflow's Python (its own virtualenv, never an airstep dependency):

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
            runs.append(
                {
                    "logical_date": info.logical_date.isoformat(),
                    "data_interval_start": info.data_interval.start.isoformat(),
                    "data_interval_end": info.data_interval.end.isoformat(),
                    "run_after": info.run_after.isoformat(),
                }
            )
            last = info.data_interval
        manual = timetable.infer_manual_data_interval(run_after=pendulum.parse(MANUAL_AT))
        records.append(
            {
                "name": name,
                "schedule": schedule,
                "start_date": start,
                "timetable": type(timetable).__name__,
                "runs": runs,
                "manual": {"run_after": MANUAL_AT, "start": manual.start.isoformat(), "end": manual.end.isoformat()},
            }
        )
    FIXTURE.write_text(json.dumps(records, indent=1) + "\n")
    print(f"{len(records)} schedules recorded to {FIXTURE.name}")


if __name__ == "__main__":
    main()
