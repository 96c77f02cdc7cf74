"""Dynamic task mapping beyond what Airflow's answers pin (tests/conformance/airflow_files/
airstep_mapping.py): retries per instance, a classic operator with shared and expanded arguments,
an input read from the XCom bucket, Airflow's cap and its error, and inputs airstep refuses."""

from __future__ import annotations

import pytest

from airstep.loader import load_dag_file
from airstep.runtime.store import RunKey
from airstep.sdk.mapping import mapped_kwargs


def _labels(result):
    return {t.label: (str(t.state), t.try_number) for t in result.tasks}


def test_each_instance_retries_on_its_own(dag_file, run_file):
    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("retrying"):
            @task(retries=1)
            def flaky(x, ti=None):
                if x == "b" and ti.try_number == 1:
                    raise ConnectionError("once")
                return x.upper()

            @task
            def joined(values):
                return "".join(values)

            joined(flaky.expand(x=["a", "b", "c"]))
        """
    )
    result = run_file(path, fast_retries=True)
    assert _labels(result) == {
        "flaky[0]": ("success", 1),
        "flaky[1]": ("success", 2),
        "flaky[2]": ("success", 1),
        "joined": ("success", 1),
    }


def test_a_classic_operator_with_shared_and_expanded_arguments(dag_file, run_file, engine):
    path = dag_file(
        """
        from airstep import DAG, BashOperator

        with DAG("classic"):
            BashOperator.partial(task_id="say", env={"WHO": "world"}).expand(
                bash_command=["echo hello $WHO", "echo bye $WHO"]
            )
        """
    )
    result = run_file(path)
    assert _labels(result) == {"say[0]": ("success", 1), "say[1]": ("success", 1)}
    _, instances = engine.store.get_mapped(RunKey(result.dag_id, result.run_id), "say")
    assert [ti.xcom() for ti in instances] == ["hello world", "bye world"]


def test_an_input_too_large_for_a_record_maps_from_the_xcom_bucket(dag_file, run_file, engine):
    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("wide"):
            @task
            def rows():
                return ["r%03d" % i + "x" * 400 for i in range(100)]

            @task
            def head(row):
                return row[:4]

            @task
            def last(heads):
                return heads[-1]

            last(head.expand(row=rows()))
        """
    )
    result = run_file(path)
    key = RunKey(result.dag_id, result.run_id)
    assert engine.store.get_task_instances(key, ["rows"])["rows"].xcoms.startswith('"s3://')
    assert engine.store.get_xcoms(key, ["last"]) == {"last": "r099"}
    assert len(result.tasks) == 102


def test_more_instances_than_max_map_length_fail_the_task_with_airflows_error(dag_file, run_file, monkeypatch):
    monkeypatch.setenv("AIRSTEP_MAX_MAP_LENGTH", "3")
    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("capped"):
            @task
            def one(x):
                return x

            one.expand(x=[1, 2, 3, 4])
        """
    )
    result = run_file(path)
    [one] = result.tasks
    assert (one.label, str(one.state)) == ("one", "failed")
    assert one.error == "ValueError: UnmappableXComLengthPushed: unmappable return value length: 4 > 3"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("one.expand_kwargs(3)", "expand_kwargs() expects a list of dicts or a task's output, got int"),
        ("one.expand(x=3)", "Cannot map to 3 (x=)"),
        ("one.expand()", "task 'one' is missing argument(s): x"),
        ("one.partial(x=1).expand(x=[2])", "arguments given to both partial() and expand(): x"),
    ],
)
def test_inputs_that_cannot_be_mapped_are_refused_where_they_are_written(dag_file, call, message):
    path = dag_file(
        f"""
        from airstep import DAG, task

        with DAG("refused"):
            @task
            def one(x):
                return x

            {call}
        """
    )
    loaded = load_dag_file(str(path))
    [error] = loaded.errors
    assert message in error.message and error.line == 9


def test_the_last_expanded_argument_varies_fastest():
    values = {"x": [1, 2, 3], "y": ["a", "b"]}  # as resolved: each argument's items
    assert [mapped_kwargs(values, i) for i in range(6)] == [{"x": x, "y": y} for x in (1, 2, 3) for y in ("a", "b")]
