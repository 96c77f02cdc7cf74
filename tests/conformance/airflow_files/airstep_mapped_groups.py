"""Written for Airflow 3.3 (unmodified under airstep): mapped task groups. Each inner task runs once
per map index, reading its upstreams in the group at the same index and those outside as a whole;
the group expands over literals, an upstream's output, `.partial()` and `expand_kwargs()`; a failed
instance fails only its own index's downstream tasks; a branch inside the group skips per index; an
empty input skips the whole group; a failed upstream fails it; a reduce gets the leaves' values in
map-index order."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task, task_group

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@task
def add_one(x):
    return x + 1


@task
def double(x):
    return 2 * x


@task
def total(values):
    return sum(v for v in values if v is not None)


with DAG("airstep_mapped_group_chain", schedule=None, start_date=START):

    @task
    def numbers():
        return [1, 2, 3]

    @task
    def label(x, prefix):
        return f"{prefix}{x}"

    @task
    def pair(doubled, x):
        return [x, doubled]

    @task_group
    def process(x, prefix):
        one = add_one(x)
        doubled = double(one)
        label(x, prefix)
        return pair(doubled, x)

    @task
    def collect(pairs):
        return list(pairs)

    collect(process.partial(prefix="n").expand(x=numbers()))

    @task_group
    def literal(x):
        return double(x)

    total.override(task_id="literal_total")(literal.expand(x=[10, 20]))

    @task_group
    def kwargs(a, b):
        return label(a, b)

    collect.override(task_id="kwargs_collect")(kwargs.expand_kwargs([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]))


with DAG("airstep_mapped_group_failures", schedule=None, start_date=START):

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def fragile(x):
        if x == 2:
            raise ValueError("two is bad")
        return x

    @task
    def after(x):
        return x * 10

    @task(trigger_rule="all_done")
    def cleanup(x):
        return f"clean {x}"

    @task_group
    def guarded(x):
        value = fragile(x)
        done = after(value)
        value >> cleanup(x)
        return done

    @task(trigger_rule="all_done")
    def summary(values):
        return list(values)

    summary(guarded.expand(x=[1, 2, 3]))

    @task
    def broken():
        raise RuntimeError("no list today")

    @task_group
    def never(x):
        return add_one(x)

    @task(trigger_rule="all_done")
    def after_never(values):
        return list(values)

    after_never(never.expand(x=broken()))

    @task
    def nothing():
        return []

    @task_group
    def empty(x):
        first = add_one(x)
        EmptyOperator(task_id="inside") << first
        return first

    @task(trigger_rule="none_failed")
    def after_empty(values):
        return list(values)

    after_empty(empty.expand(x=nothing()))


with DAG("airstep_mapped_group_branch", schedule=None, start_date=START):

    @task_group
    def route(x):
        @task.branch
        def choose(x):
            return "route.even" if x % 2 == 0 else "route.odd"

        @task
        def even(x):
            return f"{x} is even"

        @task
        def odd(x):
            return f"{x} is odd"

        @task(trigger_rule="none_failed_min_one_success")
        def join(x):
            return x

        branch = choose(x)
        picked = [even(x), odd(x)]
        branch >> picked
        done = join(x)
        picked >> done
        echo = BashOperator(task_id="echo", bash_command="echo {{ ti.map_index }}")
        done >> echo
        return done

    @task
    def joined(values):
        return list(values)

    joined(route.expand(x=[1, 2, 3, 4]))


with DAG("airstep_mapped_group_upstreams", schedule=None, start_date=START):

    @task
    def boom():
        raise ValueError("boom")

    @task
    def inner(x):
        return x

    @task(trigger_rule="all_done")
    def after_all(x):
        return x

    @task
    def free():
        return "free"

    @task_group
    def counted(x):
        inner(x) >> after_all(x)

    boom() >> counted.expand(x=[1, 2])  # the count is known: each instance decides its tasks

    @task
    def broken_list():
        raise RuntimeError("no list")

    @task_group
    def uncounted(x):
        inner(x) >> after_all(x)
        free()

    uncounted.expand(x=broken_list())  # no count: every task upstream_failed as a whole

    @task.branch
    def choose():
        return "chosen"

    @task
    def chosen():
        return "chosen"

    @task
    def produce():
        return [1, 2]

    @task_group
    def branched(x):
        inner(x) >> after_all(x)

    @task_group
    def unproduced(x):
        inner(x)

    branch = choose()
    produced = produce()
    branch >> [chosen(), produced]
    branch >> branched.expand(x=[1, 2])  # a skipped root: skipped at every index
    unproduced.expand(x=produced)  # its input's producer skipped: skipped as a whole
