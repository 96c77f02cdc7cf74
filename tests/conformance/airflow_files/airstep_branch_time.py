"""Written for Airflow 3.3 (unmodified under airstep): branching on time and on the run - the day
of the week and a date-time window of the run's logical date (2026-01-01, a Thursday, in the
recorded runs), and LatestOnlyOperator, which lets a manual run through."""

from __future__ import annotations

import datetime

import pendulum

from airflow.providers.standard.operators.datetime import BranchDateTimeOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.latest_only import LatestOnlyOperator
from airflow.providers.standard.operators.weekday import BranchDayOfWeekOperator
from airflow.providers.standard.utils.weekday import WeekDay
from airflow.sdk import DAG, TaskGroup
from airflow.utils.trigger_rule import TriggerRule

with DAG("airstep_branch_time", schedule="@daily", start_date=pendulum.datetime(2025, 12, 1, tz="UTC")):
    thursday = BranchDayOfWeekOperator(
        task_id="is_thursday",
        week_day="thursday",
        use_task_logical_date=True,
        follow_task_ids_if_true="thursday_work",
        follow_task_ids_if_false="other_day_work",
    )
    thursday >> [EmptyOperator(task_id="thursday_work"), EmptyOperator(task_id="other_day_work")]

    weekend = BranchDayOfWeekOperator(
        task_id="is_weekend",
        week_day={WeekDay.SATURDAY, WeekDay.SUNDAY},
        use_task_logical_date=True,
        follow_task_ids_if_true=["weekend_a", "weekend_b"],
        follow_task_ids_if_false="midweek",
    )
    with TaskGroup("midweek") as midweek:
        EmptyOperator(task_id="inside")
    weekend >> [EmptyOperator(task_id="weekend_a"), EmptyOperator(task_id="weekend_b"), midweek]

    in_window = BranchDateTimeOperator(
        task_id="in_window",
        use_task_logical_date=True,
        target_lower=pendulum.datetime(2025, 12, 31, 23, 0, tz="UTC"),
        target_upper=pendulum.datetime(2026, 1, 1, 1, 0, tz="UTC"),
        follow_task_ids_if_true="window_open",
        follow_task_ids_if_false="window_closed",
    )
    in_window >> [EmptyOperator(task_id="window_open"), EmptyOperator(task_id="window_closed")]

    # times of the logical date's day; an upper time before the lower one is on the next day
    overnight = BranchDateTimeOperator(
        task_id="overnight",
        use_task_logical_date=True,
        target_lower=datetime.time(22, 0),
        target_upper=datetime.time(2, 0),
        follow_task_ids_if_true="night_shift",
        follow_task_ids_if_false="day_shift",
    )
    overnight >> [EmptyOperator(task_id="night_shift"), EmptyOperator(task_id="day_shift")]
    morning = BranchDateTimeOperator(
        task_id="morning",
        use_task_logical_date=True,
        target_lower=datetime.time(6, 0),
        target_upper=None,
        follow_task_ids_if_true="after_six",
        follow_task_ids_if_false="before_six",
    )
    after_six, before_six = EmptyOperator(task_id="after_six"), EmptyOperator(task_id="before_six")
    morning >> [after_six, before_six] >> EmptyOperator(
        task_id="morning_join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )

    latest = LatestOnlyOperator(task_id="latest_only")
    latest >> EmptyOperator(task_id="only_latest") >> EmptyOperator(
        task_id="after_latest", trigger_rule=TriggerRule.ALL_DONE
    )
