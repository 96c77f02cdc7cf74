"""A flaky task that fails twice and succeeds on its third try (retries=2)."""

from datetime import datetime, timedelta

from airstep import DAG, task

with DAG(
    "flaky_retries",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
    tags=["example"],
):

    @task
    def flaky(ti=None) -> str:
        if ti.try_number < 3:
            raise ConnectionError(f"upstream API unavailable (try {ti.try_number})")
        return f"succeeded on try {ti.try_number}"

    @task
    def report(message: str) -> str:
        return message.upper()

    report(flaky())
