"""Written for Airflow 3.3 (unmodified under airstep): the edges of mapped task groups an independent
review found. A setup in the group is read at each instance's own map index; a group behind a
branch's skipped path, and tasks after it, are decided as Airflow decides them; a branch in one
group skips nothing in another; a task downstream of a group pulls a single value when only one
instance pushed one; a group's argument in a classic operator's template fields; a mapped branch
(outside any group) that skips nothing."""

from __future__ import annotations

import time

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task, task_group

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@task
def same(x):
    return x


with DAG("airstep_mapped_group_setup", schedule=None, start_date=START):

    @task
    def setup_slowly(x):
        time.sleep(2 if x == 2 else 0)
        if x == 3:
            raise ValueError("setup 3 fails")
        return x

    @task_group
    def with_setup(x):
        made = setup_slowly(x)
        first, second = same.override(task_id="w1")(x), same.override(task_id="w2")(x)
        made >> first >> second >> same.override(task_id="t")(x).as_teardown(setups=made)

    with_setup.expand(x=[1, 2, 3])


with DAG("airstep_mapped_group_guards", schedule=None, start_date=START):

    @task.branch
    def choose():
        return "other"

    @task(trigger_rule="all_done")
    def tidy():
        return "tidy"

    @task_group
    def behind(x):
        same.override(task_id="r")(x) >> tidy()

    @task_group
    def after_path(x):
        same.override(task_id="a")(x)

    branch = choose()
    branch >> same.override(task_id="other")(1)
    held = same.override(task_id="h")(2)
    branch >> held
    after = [same.override(task_id=f"x{i}")(i) for i in (1, 2, 3)]
    held >> behind.expand(x=[1, 2]) >> after[0] >> after[1] >> after[2]
    path = [same.override(task_id=f"p{i}")(i) for i in (1, 2, 3)]
    branch >> path[0] >> path[1] >> path[2] >> after_path.expand(x=[1, 2])


with DAG("airstep_mapped_group_cross", schedule=None, start_date=START):

    @task_group
    def picks(x):
        @task.branch
        def pick(x):
            return "picks.t"

        chosen = pick(x)
        chosen >> same.override(task_id="t")(x)
        return chosen

    @task_group
    def later(y):
        return same.override(task_id="u")(y)

    picks.expand(x=[1, 2]) >> later.expand(y=[1, 2])


with DAG("airstep_mapped_group_pulls", schedule=None, start_date=START):

    @task
    def total(v):
        return v

    @task
    def inner(x):
        if x == 2:
            raise ValueError("two")
        return x

    @task(trigger_rule="all_done")
    def survivors(v):
        return v

    @task_group
    def one(x):
        return same.override(task_id="a")(x)

    @task_group
    def mostly_failing(x):
        return inner(x)

    total(one.expand(x=[5]))
    survivors(mostly_failing.expand(x=[1, 2, 2]))


def show(v):
    return f"got {v}"


with DAG("airstep_mapped_group_classic", schedule=None, start_date=START):

    @task_group
    def classic(name):
        PythonOperator(task_id="py", python_callable=show, op_kwargs={"v": name})
        BashOperator(task_id="env", bash_command="echo $N", env={"N": name})

    classic.expand(name=["a", "b"])


with DAG("airstep_mapped_branch", schedule=None, start_date=START):

    @task.branch
    def choose_each(x):
        return "left" if x == 1 else "right"

    @task.short_circuit
    def go_on(x):
        return x == 1

    # A mapped instance's skips apply to nothing outside a mapped task group (Airflow 3.3.2)
    choose_each.expand(x=[1, 2]) >> [same.override(task_id="left")(1), same.override(task_id="right")(2)]
    go_on.expand(x=[1, 2]) >> same.override(task_id="after_go_on")(3)


with DAG("airstep_mapped_pull_one", schedule=None, start_date=START):

    @task
    def tenfold(x):
        return 10 * x

    @task
    def pull_it(ti=None):
        return [ti.xcom_pull(task_ids="tenfold"), ti.xcom_pull(task_ids="nothing_mapped")]

    @task
    def as_argument(values):
        return list(values)

    @task
    def nothing(x):
        return None

    one = tenfold.expand(x=[1])
    none = nothing.override(task_id="nothing_mapped").expand(x=[1, 2])
    [one, none] >> pull_it()
    as_argument(one)  # an argument keeps the list, as Airflow's LazyXComSequence
