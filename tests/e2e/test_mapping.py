"""Dynamic task mapping beyond what Airflow's answers pin (tests/conformance/airflow_files/
airstep_mapping.py): retries per instance, a classic operator with shared and expanded arguments,
an input read from the XCom bucket, Airflow's cap and its error, and inputs airstep refuses."""

from __future__ import annotations

import pytest

from airstep.contract import INLINE_MAP_MAX_ITEMS
from airstep.loader import load_dag_file
from airstep.runtime.map_items import map_items_key
from airstep.runtime.store import RunKey
from airstep.sdk.mapping import mapped_kwargs
from helpers import KeepMachines, executions


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


WIDE = """
from airstep import DAG, task
from airstep.trigger_rule import TriggerRule

with DAG("fan_{n}"):
    @task
    def numbers():
        return list(range({n}))

    @task(retries=1)
    def square(x, ti=None):
        if x % 10 == 7 and ti.try_number == 1:
            raise ConnectionError("flaky once")
        if x == 13:
            raise ValueError("thirteen")
        return x * x

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def total(values):
        return [len(values), sum(values)]

    total(square.expand(x=numbers()))
"""


def _history(engine, dag_id):
    [execution] = executions(engine.sfn, dag_id)
    return engine.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]


@pytest.mark.parametrize("n", [INLINE_MAP_MAX_ITEMS, INLINE_MAP_MAX_ITEMS + 1, 120])
def test_more_instances_than_one_inline_wave_run_as_a_distributed_map(n, dag_file, run_file, engine, monkeypatch):
    """Up to 40 instances run in the parent's inline Map; more, as child executions of a Distributed
    Map whose ItemReader reads the indexes the expand step wrote to S3. Either way each instance has
    its own tries, and the reduce sees every result in map-index order."""
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    result = run_file(dag_file(WIDE.format(n=n)), fast_retries=True)
    labels = _labels(result)
    assert len(labels) == n + 2
    assert labels["square[7]"] == ("success", 2) and labels["square[8]"] == ("success", 1)
    assert labels["square[13]"] == ("failed", 2)
    assert engine.store.get_xcoms(RunKey(result.dag_id, result.run_id), ["total"]) == {
        "total": [n - 1, sum(x * x for x in range(n) if x != 13)]
    }
    history = _history(engine, f"fan_{n}")
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    distributed = n > INLINE_MAP_MAX_ITEMS
    assert ("square@dmap" in entered, "square@map" in entered) == (distributed, not distributed)
    assert any(e["type"] == "MapRunStarted" for e in history) == distributed
    # the parent's history holds one wave at most: a Distributed Map costs it a handful of events
    assert len(history) < 40 + (INLINE_MAP_MAX_ITEMS * 9 if not distributed else 0)
    key = map_items_key(f"fan_{n}", result.run_id, "square")
    listed = engine.s3.list_objects_v2(Bucket=engine.names.xcom_bucket, Prefix=key).get("Contents", [])
    assert len(listed) == distributed
    if distributed:
        body = engine.s3.get_object(Bucket=engine.names.xcom_bucket, Key=key)["Body"].read()
        assert body == str(list(range(n))).replace(" ", "").encode()


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


def test_map_index_template_names_each_instance_after_its_try(dag_file, run_file, engine):
    """As Airflow 3: rendered after the try in its context (which the task may add to); on success a
    template that fails fails the try, after a failure it only leaves the instance unnamed."""
    path = dag_file(
        """
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.sdk import DAG, get_current_context, task

        with DAG("named"):
            @task(map_index_template="{{ city_label }}")
            def weather(city):
                get_current_context()["city_label"] = city.title()
                if city == "oslo":
                    raise ValueError("no data")
                return len(city)

            weather.expand(city=["paris", "oslo"])
            BashOperator.partial(task_id="say", map_index_template="{{ task.bash_command }}").expand(
                bash_command=["echo a", "echo b"]
            )

            @task(map_index_template="{{ missing }}")
            def unnamed(x):
                return x

            @task(trigger_rule="all_done")
            def pulled(values):
                return list(values)

            pulled(unnamed.expand(x=[1]))
        """
    )
    result = run_file(path)
    named = {t.label: (str(t.state), t.rendered_map_index) for t in result.tasks}
    assert named == {
        "weather[0]": ("success", "Paris"),
        "weather[1]": ("failed", "Oslo"),
        "say[0]": ("success", "echo a"),
        "say[1]": ("success", "echo b"),
        "unnamed[0]": ("failed", None),
        "pulled": ("success", None),
    }
    [unnamed] = [t for t in result.tasks if t.task_id == "unnamed"]
    assert "'missing' is undefined" in unnamed.error
    # the template is rendered before the return value is pushed: the failed try pushed nothing
    assert engine.store.get_xcoms(RunKey(result.dag_id, result.run_id), ["pulled"]) == {"pulled": []}


def test_a_reduce_over_more_values_than_one_lambda_request_holds(dag_file, run_file, engine):
    """180 instances each return 30,000 characters (each kept in its record): 5.4 MB of upstream
    XComs, more than a request to the executor may carry, so they travel through the XCom bucket."""
    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("wide_reduce"):
            @task
            def chunk(i):
                return str(i % 10) * 30_000

            @task
            def measure(chunks):
                chunks = list(chunks)
                return [len(chunks), sum(map(len, chunks)), chunks[179][:1]]

            measure(chunk.expand(i=list(range(180))))
        """
    )
    result = run_file(path)
    key = RunKey(result.dag_id, result.run_id)
    assert engine.store.get_xcoms(key, ["measure"]) == {"measure": [180, 5_400_000, "9"]}
    parked = engine.s3.list_objects_v2(Bucket=engine.names.xcom_bucket, Prefix="handoff/wide_reduce/")["Contents"]
    [only] = parked  # one object, named by its content
    assert only["Key"].startswith(f"handoff/wide_reduce/{result.run_id}/") and only["Size"] > 5_000_000
