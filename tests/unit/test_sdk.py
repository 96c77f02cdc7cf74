from datetime import datetime, timedelta

import pytest

from airstep import DAG, BashOperator, EmptyOperator, PythonOperator, chain, cross_downstream, dag, task
from airstep.contract import Schedule, ScheduleKind
from airstep.errors import DagDefinitionError
from airstep.sdk.xcom_arg import XComArg


def edges(d: DAG) -> set[tuple[str, str]]:
    return {(u, t.task_id) for t in d.tasks for u in t.upstream_task_ids}


def test_shift_operators_with_lists():
    with DAG("shifts") as d:
        a, b, c, e = (EmptyOperator(task_id=x) for x in "abce")
        a >> [b, c] >> e
        [a] << EmptyOperator(task_id="z")
    assert edges(d) == {("a", "b"), ("a", "c"), ("b", "e"), ("c", "e"), ("z", "a")}


def test_chain_and_cross_downstream():
    with DAG("chains") as d:
        t = {x: EmptyOperator(task_id=x) for x in "abcdefg"}
        chain(t["a"], [t["b"], t["c"]], [t["d"], t["e"]], t["f"])
        cross_downstream([t["a"], t["b"]], [t["g"]])
    assert edges(d) == {
        ("a", "b"),
        ("a", "c"),
        ("b", "d"),
        ("c", "e"),
        ("d", "f"),
        ("e", "f"),
        ("a", "g"),
        ("b", "g"),
    }


def test_chain_rejects_lists_of_different_lengths():
    with DAG("bad_chain"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        with pytest.raises(DagDefinitionError, match="different lengths"):
            chain([a, b], [c])


def test_taskflow_call_returns_reference_and_creates_edge():
    with DAG("tf") as d:

        @task
        def one() -> int:
            return 1

        @task
        def add(x: int, y: int) -> int:
            return x + y

        ref = one()
        out = add(ref, y=one())
    assert isinstance(ref, XComArg) and isinstance(out, XComArg)
    assert d.task_ids == ["one", "one__1", "add"]
    assert d.get_task("add").upstream_task_ids == {"one", "one__1"}


def test_override_and_operator_output():
    with DAG("ov") as d:
        b = BashOperator(task_id="b", bash_command="echo hi")

        @task(retries=2)
        def use(v: str) -> str:
            return v

        use.override(task_id="custom", retries=5)(b.output)
    assert d.get_task("custom").retries == 5
    assert d.get_task("custom").upstream_task_ids == {"b"}


def test_default_args_apply_and_task_arguments_win():
    with DAG("defaults", default_args={"retries": 3, "retry_delay": timedelta(seconds=7), "owner": "data"}) as d:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b", retries=0, retry_exponential_backoff=True, max_retry_delay=60)
    assert (a.retries, a.retry_delay, a.owner) == (3, 7.0, "data")
    assert (b.retries, b.retry_exponential_backoff, b.max_retry_delay) == (0, 2.0, 60.0)
    assert d.tasks == [a, b]


def test_dag_decorator_builds_on_call():
    @dag(schedule="@hourly", start_date=datetime(2026, 1, 1), tags=["t"])
    def my_pipeline():
        EmptyOperator(task_id="only")

    built = my_pipeline()
    assert built.dag_id == "my_pipeline"
    assert built.schedule == Schedule(ScheduleKind.CRON_TRIGGER, "0 * * * *", "@hourly")


def test_schedules():
    assert DAG("a", schedule=timedelta(hours=2)).schedule == Schedule(ScheduleKind.DELTA_TRIGGER, seconds=7200.0)
    assert DAG("b", schedule="*/5 * * * *").schedule == Schedule(ScheduleKind.CRON_TRIGGER, "*/5 * * * *")
    assert DAG("c", schedule="@once").schedule == Schedule(ScheduleKind.ONCE)
    assert DAG("d").schedule is None
    with pytest.raises(DagDefinitionError, match="not a valid cron"):
        DAG("e", schedule="every day")


def test_constructors_have_no_side_effects(tmp_path):
    marker = tmp_path / "ran"
    with DAG("pure"):
        BashOperator(task_id="b", bash_command=f"touch {marker}")
        PythonOperator(task_id="p", python_callable=lambda: marker.write_text("x"))
    assert not marker.exists()


def test_xcomarg_cannot_be_iterated_at_parse_time():
    with DAG("iter"):

        @task
        def rows() -> list[int]:
            return [1]

        with pytest.raises(DagDefinitionError, match="only known when the DAG runs"):
            list(rows())


def test_errors_carry_the_callers_line():
    with DAG("where"):
        with pytest.raises(DagDefinitionError) as info:
            EmptyOperator(task_id="bad id")
    assert info.value.location.file == __file__
    assert info.value.location.line > 0
