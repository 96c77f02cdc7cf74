from datetime import UTC, datetime, timedelta

import pytest

from airstep.contract import Schedule, ScheduleKind, execution_name
from airstep.runtime.scheduling import manual_run, scheduled_run
from airstep_compiler.schedules import ScheduleError, eventbridge_cron, scheduler_expression

FIRED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def test_cron_trigger_logical_date_is_fire_time():
    run = scheduled_run("etl", Schedule(ScheduleKind.CRON_TRIGGER, "0 2 * * *"), FIRED)
    assert (run.logical_date, run.data_interval_start, run.data_interval_end) == (FIRED, FIRED, FIRED)
    assert run.run_id == "scheduled__2026-11-21T02:00:00+00:00"
    assert execution_name(run.run_id) == "scheduled__2026-11-21T02-00-00+00-00"


def test_cron_data_interval_covers_previous_interval_in_dag_timezone():
    # 03:00 in Paris daily = 02:00 UTC in winter; the run firing then covers the previous day
    run = scheduled_run("etl", Schedule(ScheduleKind.CRON_INTERVAL, "0 3 * * *"), FIRED, "Europe/Paris")
    assert run.data_interval_start == FIRED - timedelta(days=1)
    assert run.data_interval_end == FIRED
    assert run.logical_date == run.data_interval_start


def test_delta_interval_ends_at_fire_time():
    run = scheduled_run("etl", Schedule(ScheduleKind.DELTA_INTERVAL, seconds=3600), FIRED)
    assert (run.data_interval_start, run.data_interval_end) == (FIRED - timedelta(hours=1), FIRED)


def test_manual_run_ids():
    run = manual_run("etl", datetime(2026, 1, 2, 3, 4, 5), None, {"x": 1})
    assert run.run_id == "manual__2026-01-02T03:04:05+00:00"
    assert run.to_input()["conf"] == {"x": 1} and run.to_input()["run_type"] == "manual"


def test_manual_run_of_an_interval_schedule_covers_the_interval_before_it():
    """Airflow 3.3's DeltaDataIntervalTimetable.infer_manual_data_interval (tests/conformance/test_timetables.py)."""
    run = manual_run("etl", FIRED, Schedule(ScheduleKind.DELTA_INTERVAL, seconds=3600))
    assert (run.data_interval_start, run.data_interval_end) == (FIRED - timedelta(hours=1), FIRED)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 2 * * *", "cron(0 2 * * ? *)"),
        ("30 6 * * 1-5", "cron(30 6 ? * 2,3,4,5,6 *)"),
        ("0 0 * * 0", "cron(0 0 ? * 1 *)"),
        ("0 0 * * 7", "cron(0 0 ? * 1 *)"),
        ("15 */4 1 */3 *", "cron(15 */4 1 */3 ? *)"),
    ],
)
def test_eventbridge_cron(cron, expected):
    assert eventbridge_cron(cron) == expected


def test_both_day_fields_cannot_be_expressed():
    with pytest.raises(ScheduleError, match="both day-of-month and day-of-week"):
        eventbridge_cron("0 0 1 * 1")


def test_scheduler_expressions():
    every = Schedule(ScheduleKind.DELTA_TRIGGER, seconds=7200)
    assert scheduler_expression(every, None) == "rate(2 hours)"
    assert scheduler_expression(Schedule(ScheduleKind.DELTA_INTERVAL, seconds=60), None) == "rate(1 minute)"
    once = Schedule(ScheduleKind.ONCE)
    assert scheduler_expression(once, "2026-12-01T08:00:00+01:00") == "at(2026-12-01T07:00:00)"
    with pytest.raises(ScheduleError):
        scheduler_expression(Schedule(ScheduleKind.DELTA_INTERVAL, seconds=90), None)


def test_schedules_round_trip_through_their_records():
    for schedule in (
        Schedule(ScheduleKind.CRON_TRIGGER, "0 0 * * *", "@daily"),
        Schedule(ScheduleKind.CRON_INTERVAL, "0 3 * * *", timezone="Europe/Paris"),
        Schedule(ScheduleKind.DELTA_INTERVAL, seconds=3600.0),
        Schedule(ScheduleKind.DELTA_TRIGGER, seconds=86400.0, interval=43200.0),
        Schedule(ScheduleKind.CRON_TRIGGER, "0 3 * * *", interval=10800.0),
        Schedule(ScheduleKind.ONCE),
    ):
        assert Schedule.from_dict(schedule.to_dict()) == schedule
