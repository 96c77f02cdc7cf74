"""Written for Airflow 3.3 (unmodified under airstep): dynamic task mapping. A cross product over an
upstream list and a literal, a reduce over it (instances that returned None leave no value), an empty
input skipping the mapped task and its reduce, a failed instance failing its reduce upstream, and a
mapped classic operator."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task
from airflow.providers.standard.operators.bash import BashOperator

with DAG("airstep_mapping", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def nums():
        return [1, 2, 3]

    @task
    def add(x, y):
        return None if x == 2 else f"{x}{y}"

    @task
    def total(values):
        return list(values)

    @task
    def empty():
        return []

    @task
    def never(x):
        return x

    @task
    def after_never(values):
        return list(values)

    @task(retries=0)
    def flaky(x):
        if x == 2:
            raise ValueError("two")
        return x

    @task
    def after_flaky(values):
        return list(values)

    total(add.expand(x=nums(), y=["a", "b"]))
    after_never(never.expand(x=empty()))
    after_flaky(flaky.expand(x=[1, 2, 3]))
    BashOperator.partial(task_id="bash").expand(bash_command=["echo 1", "echo 2"])
