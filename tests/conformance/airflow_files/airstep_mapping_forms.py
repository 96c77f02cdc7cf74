"""Written for Airflow 3.3 (unmodified under airstep): the other forms of dynamic task mapping. A dict
maps to its (key, value) pairs, literal or pulled; expand_kwargs over a literal list and over an
upstream output, on TaskFlow and classic operators; zip to the shortest input and, with fillvalue, to
the longest; XComArg.map."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task
from airflow.providers.standard.operators.bash import BashOperator

with DAG("airstep_mapping_forms", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def show(x):
        return repr(x)

    @task
    def pairs(a, b):
        return f"{a}-{b}"

    @task
    def letters():
        return ["a", "b", "c"]

    @task
    def nums():
        return [1, 2]

    @task
    def kwargs_list():
        return [{"a": 1, "b": 2}, {"a": 3, "b": 4}]

    @task
    def mapping():
        return {"k1": "v1", "k2": "v2"}

    show.override(task_id="over_dict_literal").expand(x={"k1": "v1", "k2": "v2"})
    show.override(task_id="over_dict_xcom").expand(x=mapping())
    pairs.override(task_id="kw_literal").expand_kwargs([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    pairs.override(task_id="kw_xcom").expand_kwargs(kwargs_list())
    show.override(task_id="zipped").expand(x=letters().zip(nums()))
    show.override(task_id="zipped_fill").expand(x=letters().zip(nums(), fillvalue=0))
    show.override(task_id="mapped_fn").expand(x=letters().map(lambda s: s.upper()))
    BashOperator.partial(task_id="bash_kw").expand_kwargs(
        [{"bash_command": "echo 1"}, {"bash_command": "echo 2", "env": {"A": "b"}}]
    )
