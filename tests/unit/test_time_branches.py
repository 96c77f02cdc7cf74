"""The branches on time that dag.test() cannot show (it always runs manually, at a fixed logical
date): LatestOnlyOperator on scheduled runs, and the day-of-week and date-time branches on the
clock. Each pins the rule of Airflow 3.3's standard provider named in its docstring."""

from __future__ import annotations

import datetime as dt

import pytest

from airstep.contract import DagRun
from airstep.sdk.dag import DAG
from airstep.sdk.operators.datetime import BranchDateTimeOperator, target_times_as_dates
from airstep.sdk.operators.empty import EmptyOperator
from airstep.sdk.operators.latest_only import LatestOnlyOperator
from airstep.sdk.operators.weekday import BranchDayOfWeekOperator
from airstep.sdk.weekday import WeekDay
from airstep.states import RunType

UTC = dt.UTC


def latest_only(schedule):
    with DAG("latest", schedule=schedule, start_date=dt.datetime(2026, 1, 1, tzinfo=UTC)):
        check = LatestOnlyOperator(task_id="latest_only")
        check >> [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
    return check


def run_of(run_type, start, end):
    return {"dag_run": DagRun("latest", "r", run_type, start, start, end)}


def test_latest_only_lets_manual_runs_through():
    """`if dag_run.run_type == DagRunType.MANUAL: return all direct downstream ids`."""
    old = dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert latest_only("@daily").choose_branch(run_of(RunType.MANUAL, old, old)) == ["a", "b"]


@pytest.mark.parametrize("schedule", ["@daily", dt.timedelta(hours=4)])
def test_latest_only_skips_all_but_the_latest_interval(schedule):
    """Follow only if `left_window < now <= right_window`: from this run's interval start to the end
    of the interval after it (a scheduled run of an old interval - catch-up, backfill - skips)."""
    check = latest_only(schedule)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    period = dt.timedelta(days=1) if schedule == "@daily" else schedule
    if schedule == "@daily":  # a cron trigger: a run's interval is the instant it fired
        fired = now.replace(hour=0, minute=0, second=0)
        current, old = (fired, fired), (fired - 5 * period, fired - 5 * period)
    else:
        current, old = (now - period, now), (now - 6 * period, now - 5 * period)
    assert check.choose_branch(run_of(RunType.SCHEDULED, *current)) == ["a", "b"]
    assert check.choose_branch(run_of(RunType.SCHEDULED, *old)) == []


def test_latest_only_follows_when_there_is_no_later_interval():
    """`if dates is None` (no next interval, as for @once): proceed."""
    when = dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert latest_only("@once").choose_branch(run_of(RunType.SCHEDULED, when, when)) == ["a", "b"]


def test_day_of_week_on_the_clock_and_on_the_logical_date():
    today = dt.datetime.now(UTC)
    with DAG("days", schedule=None):
        on_the_clock = BranchDayOfWeekOperator(
            task_id="clock", week_day=today.strftime("%A"), follow_task_ids_if_true="t", follow_task_ids_if_false="f"
        )
        on_the_date = BranchDayOfWeekOperator(
            task_id="date",
            week_day={WeekDay.SATURDAY, WeekDay.SUNDAY},
            use_task_logical_date=True,
            follow_task_ids_if_true="t",
            follow_task_ids_if_false="f",
        )
    assert on_the_clock.choose_branch({}) == "t"
    assert on_the_date.choose_branch({"logical_date": dt.datetime(2026, 1, 3, tzinfo=UTC)}) == "t"  # a Saturday
    assert on_the_date.choose_branch({"logical_date": dt.datetime(2026, 1, 5, tzinfo=UTC)}) == "f"


def test_week_day_names_are_checked_when_the_task_is_defined():
    """WeekDay.get_weekday_number: `Invalid Week Day passed: "<name>"`."""
    with DAG("days", schedule=None), pytest.raises(AttributeError, match='Invalid Week Day passed: "Someday"'):
        BranchDayOfWeekOperator(
            task_id="bad", week_day="Someday", follow_task_ids_if_true="t", follow_task_ids_if_false="f"
        )


def test_date_time_window_on_the_clock():
    now = dt.datetime.now(UTC)
    with DAG("window", schedule=None):
        inside = BranchDateTimeOperator(
            task_id="inside",
            target_lower=now - dt.timedelta(hours=1),
            target_upper=now + dt.timedelta(hours=1),
            follow_task_ids_if_true="t",
            follow_task_ids_if_false="f",
        )
        before = BranchDateTimeOperator(
            task_id="before",
            target_lower=now + dt.timedelta(hours=1),
            target_upper=None,
            follow_task_ids_if_true="t",
            follow_task_ids_if_false="f",
        )
    assert inside.choose_branch({}) == "t"
    assert before.choose_branch({}) == "f"


def test_an_upper_time_before_the_lower_is_the_next_day():
    base = dt.datetime(2026, 1, 1, 12, 0)
    lower, upper = target_times_as_dates(base, dt.time(22, 0), dt.time(2, 0))
    assert (lower, upper) == (dt.datetime(2026, 1, 1, 22, 0), dt.datetime(2026, 1, 2, 2, 0))


def test_time_branches_compare_in_the_start_dates_zone_even_a_fixed_offset():
    """Airflow's dag.timezone is start_date's tzinfo: a fixed offset is a zone too."""
    plus_two = dt.timezone(dt.timedelta(hours=2))
    with DAG("offset", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=plus_two)) as dag:
        window = BranchDateTimeOperator(
            task_id="window",
            use_task_logical_date=True,
            target_lower=dt.time(1, 0),  # 01:00 at +02:00 is 23:00 UTC the day before
            target_upper=dt.time(3, 0),
            follow_task_ids_if_true="t",
            follow_task_ids_if_false="f",
        )
    assert dag.timezone is plus_two
    # the window is 01:00-03:00 at +02:00 on the logical date's day (as its own zone writes it)
    assert window.choose_branch({"logical_date": dt.datetime(2026, 1, 1, 1, 30, tzinfo=plus_two)}) == "t"
    assert window.choose_branch({"logical_date": dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)}) == "t"  # 02:00 +02
    assert window.choose_branch({"logical_date": dt.datetime(2026, 1, 1, 2, 0, tzinfo=UTC)}) == "f"  # 04:00 +02


def test_a_fixed_offset_schedules_in_its_etc_zone_or_is_refused():
    """EventBridge Scheduler takes IANA zone names only: a whole-hour offset is its Etc/GMT zone
    (whose sign is inverted), any other fixed offset is a definition error naming it."""
    from airstep.errors import DagDefinitionError
    from airstep.model import DagModel

    with DAG(
        "plus_two", schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ) as dag:
        EmptyOperator(task_id="t")
    assert DagModel.from_dag(dag).timezone == "Etc/GMT-2"
    with pytest.raises(DagDefinitionError, match="fixed UTC offset \\+0530 is no IANA time zone"):
        DAG(
            "india",
            schedule="@daily",
            start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        )
