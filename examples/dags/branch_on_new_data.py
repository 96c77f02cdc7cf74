"""Branching: process the day's files only when there are some. The processing path behind the
branch is skipped as a whole when it is not followed: one Choice state instead of a state per task."""

from datetime import datetime

from airstep import DAG, EmptyOperator, TriggerRule, task

with DAG(
    "branch_on_new_data",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    params={"files": 3},
    tags=["example"],
):

    @task.branch
    def any_new_files(params=None) -> str:
        return "extract" if params["files"] else "nothing_to_do"

    @task
    def extract(params=None) -> list[int]:
        return list(range(params["files"]))

    @task
    def transform(rows: list[int]) -> list[int]:
        return [row * 10 for row in rows]

    @task
    def load(rows: list[int]) -> int:
        return len(rows)

    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    branch = any_new_files()
    extracted = extract()
    branch >> [extracted, EmptyOperator(task_id="nothing_to_do")] >> done
    load(transform(extracted)) >> done
