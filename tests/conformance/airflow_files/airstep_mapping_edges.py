"""Written for Airflow 3.3 (unmodified under airstep): the edges of mapping and sensors an independent
review found. A reduce over an empty map gets [] (not None); pulling a list of task ids flattens a
mapped task's values; values pulled from an XCom are not rendered as templates; a mapped setup is
an indirect setup of the work after it; the task that pushes what a mapped task expands over fails
when it pushes nothing or no list; a sensor among eight parallel tasks; a poke-mode sensor keeps
what its earlier pokes pushed."""

from __future__ import annotations

import os
import tempfile

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, get_current_context, setup, task, teardown


def pokes_so_far(name, run_id):
    path = os.path.join(tempfile.gettempdir(), f"airstep_edges_{name}_" + "".join(c for c in run_id if c.isalnum()))
    pokes = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as counter:
        counter.write(str(pokes))
    if pokes >= 3:
        os.remove(path)  # a later run of the same run id starts again
    return pokes


def pushes_each_poke(run_id=None, ti=None):
    pokes = pokes_so_far("push", run_id)
    ti.xcom_push(key=f"poke{pokes}", value=pokes)
    return pokes >= 3


with DAG("airstep_mapping_edges", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def nothing_new():
        return []

    @task
    def size(name):
        return len(name)

    @task(trigger_rule="none_failed")
    def total(sizes):
        return sum(sizes)

    empty = nothing_new()
    total(size.expand(name=empty))

    @task
    def double(x):
        return 2 * x

    @task
    def pull_list():
        return get_current_context()["ti"].xcom_pull(task_ids=["double", "nothing_new"])

    [double.expand(x=[1, 2]), empty] >> pull_list()

    @task
    def templates():
        return ["{{ ds }}", "{{ run_id }}"]

    @task
    def show(x):
        return x

    show.override(task_id="not_rendered").expand(x=templates())
    show.override(task_id="rendered").expand(x=["{{ ds }}"])

    @setup
    def make(x):
        return x

    @task
    def work():
        return 1

    @task
    def after_work(value):
        return value + 1

    @teardown
    def clean():
        return "clean"

    made, worked, cleaned = make.expand(x=[1, 2]), work(), clean()
    made >> worked
    made >> cleaned
    after_work(worked) >> cleaned

    @task
    def lookup_none():
        return None

    @task
    def lookup_number():
        return 5

    @task
    def audit(value):
        return "ran"

    for lookup in (lookup_none(), lookup_number()):
        show.expand(x=lookup)
        audit(lookup)

    @task.sensor(poke_interval=1, timeout=30)
    def wide_sensor(run_id=None):
        return pokes_so_far("wide", run_id) >= 3

    start, end = EmptyOperator(task_id="start"), EmptyOperator(task_id="end")
    start >> [wide_sensor(), *(EmptyOperator(task_id=f"e{i}") for i in range(8))] >> end
    pushing = PythonSensor(task_id="pushing", python_callable=pushes_each_poke, poke_interval=1, timeout=30)

    @task
    def pushed(ti=None):
        return [ti.xcom_pull(task_ids="pushing", key=f"poke{n}") for n in (1, 2, 3)]

    pushing >> pushed()
