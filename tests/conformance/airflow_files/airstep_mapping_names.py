"""Written for Airflow 3.3 (unmodified under airstep): map_index_template and a Distributed Map.
A template rendered from what the task added to its context; a template that cannot render fails a
try that succeeded (and nothing is pushed) but changes nothing for one that failed; a reduce with
all_done over them; more instances than one inline wave (a Distributed Map under airstep)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, get_current_context, task

with DAG("airstep_mapping_names", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task(map_index_template="{{ label }}")
    def named(city):
        get_current_context()["label"] = city.title()
        return len(city)

    @task(map_index_template="{{ undefined_name }}")
    def unrenderable(x):
        if x == 2:
            raise ValueError("failed before its name")
        return x

    @task(trigger_rule="all_done")
    def collected(lengths, values):
        return [sorted(lengths), sorted(values)]

    @task
    def wide(i):
        return i * i

    @task
    def summed(squares):
        return sum(squares)

    collected(named.expand(city=["paris", "oslo"]), unrenderable.expand(x=[1, 2]))
    summed(wide.expand(i=list(range(45))))
