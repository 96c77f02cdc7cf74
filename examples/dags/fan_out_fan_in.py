"""Fan-out / fan-in: one task feeds five parallel workers whose results are joined."""

from datetime import datetime

from airstep import DAG, EmptyOperator, task

with DAG("fan_out_fan_in", schedule=None, start_date=datetime(2026, 1, 1), tags=["example"]):
    start = EmptyOperator(task_id="start")

    @task
    def seed() -> int:
        return 7

    @task
    def square(i: int, base: int) -> int:
        return (base + i) ** 2

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    base = seed()
    start >> base
    total([square.override(task_id=f"square_{i}")(i, base) for i in range(5)])
