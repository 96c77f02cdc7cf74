"""Written for Airflow 3.3 (unmodified under airstep): TaskGroup and @task_group, nested groups,
prefix_group_id=False, default_args per group (a flaky task retried by its group's retries),
group-to-group, task-to-group and group-to-task dependencies, a decorated group called twice
(ids suffixed), one returning a task (dependencies bind to it) and one taking an upstream output."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup, get_current_context, task, task_group
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    "airstep_task_groups",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    default_args={"retries": 0, "retry_delay": timedelta(0)},
):
    start = EmptyOperator(task_id="start")

    with TaskGroup("extract", default_args={"retries": 2}) as extract:

        @task
        def flaky():
            if get_current_context()["ti"].try_number < 3:
                raise RuntimeError("not yet")
            return 10

        first = flaky()
        with TaskGroup("inner", tooltip="nested") as inner:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a >> b
        first >> inner

    with TaskGroup("flat", prefix_group_id=False) as flat:
        EmptyOperator(task_id="unprefixed_1")
        EmptyOperator(task_id="unprefixed_2")

    @task_group
    def transform(value):
        @task
        def double(x):
            return 2 * x

        @task
        def describe(x):
            return f"value {x}"

        return describe(double(value))

    @task_group(group_id="checks")
    def checks():
        EmptyOperator(task_id="one")
        EmptyOperator(task_id="two", trigger_rule=TriggerRule.ALL_DONE)

    end = EmptyOperator(task_id="end", trigger_rule=TriggerRule.NONE_FAILED)
    start >> extract >> flat
    described = transform(first)
    again = transform(5)
    [flat, described] >> checks() >> end
    again >> checks() >> end
