"""A nightly extract that must be done within two hours of its logical date, and a warning when a run
takes much longer than the DAG's recent runs: Airflow 3's deadline alerts. Nothing waits for either:
each run arms a one-off schedule per alert, and a run that has ended by then fires nothing."""

from datetime import datetime, timedelta

from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback, task


def notify(context: dict, channel: str) -> None:
    """What a missed deadline calls: here it prints; a team would post to `channel`."""
    run, deadline = context["dag_run"], context["deadline"]
    print(f"[{channel}] {run['dag_id']} {run['dag_run_id']} missed its deadline {deadline['deadline_time']}")


alerts = [
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(hours=2),
        callback=SyncCallback(notify, kwargs={"channel": "#finance-data"}),
        name="done by 02:00",
    ),
    DeadlineAlert(
        reference=DeadlineReference.AVERAGE_RUNTIME(max_runs=7, min_runs=3),
        interval=timedelta(minutes=30),
        callback=SyncCallback(notify, kwargs={"channel": "#data-oncall"}),
        name="slower than usual",
    ),
]

with DAG("deadline_alert", schedule="@daily", start_date=datetime(2026, 1, 1), deadline=alerts, tags=["example"]):

    @task
    def extract() -> list[int]:
        return [3, 1, 2]

    @task
    def load(rows: list[int]) -> int:
        return len(rows)

    load(extract())
