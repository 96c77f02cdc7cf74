"""xcom_pull of tasks further up than a task's direct upstream: those its templates or code name by
a literal id are handed to it (TaskModel.pulls), as the amazon provider's EMR example pulls the
cluster id two tasks down; any other task stays out of reach, with an error that says how to reach it."""

from __future__ import annotations

from airstep.model import DagModel
from airstep.runtime.store import RunKey
from airstep.sandbox import parse_dag_file
from airstep_compiler import DagSource
from airstep_local.engine import RunRequest

SOURCE = """
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG("pulls", schedule=None):
    @task
    def cluster():
        return "j-1"

    @task
    def steps(cluster_id):
        return [cluster_id + "/s-1"]

    watch = BashOperator(
        task_id="watch",
        bash_command="echo {{ ti.xcom_pull('cluster') }} {{ ti.xcom_pull(task_ids='steps')[0] }}",
    )

    @task
    def report(ti=None):
        return [ti.xcom_pull(task_ids="cluster"), ti.xcom_pull(task_ids=["steps", "watch"])]

    @task
    def reach(ti=None):
        task_id = "cluster"  # not a literal in the call: out of reach
        return ti.xcom_pull(task_ids=task_id)

    first = cluster()
    watched = steps(first) >> watch
    watched >> report()
    watched >> reach()
"""


def test_a_task_pulls_the_ancestors_its_templates_and_code_name(engine, tmp_path):
    path = tmp_path / "pulls.py"
    path.write_text(SOURCE)
    parsed = parse_dag_file(path)  # (in the sandbox's child, where the file is known by its URI)
    assert not parsed.errors, parsed.errors
    model = DagModel.from_json(parsed.models[0])
    assert {t.task_id: t.pulls for t in model.tasks if t.pulls} == {
        "watch": ("cluster",),
        "report": ("cluster", "steps"),
    }
    result = engine.run(model, DagSource(str(path), parsed.version), RunRequest())
    states = {t.task_id: (t.state, t.error) for t in result.tasks}
    assert states["watch"] == ("success", None) and states["report"] == ("success", None)
    values = engine.store.get_xcoms(RunKey("pulls", result.run_id), ["watch", "report"])
    assert values == {"watch": "j-1 j-1/s-1", "report": ["j-1", [["j-1/s-1"], "j-1 j-1/s-1"]]}
    state, error = states["reach"]
    assert state == "failed"
    assert "xcom_pull('cluster'): task 'reach' can pull the XComs of its upstream tasks" in error
    assert "name it so" in error


EARLY = """
import time
from airflow.sdk import DAG, task

with DAG("early_pull", schedule=None):
    @task
    def items():
        return [1, 2]

    @task
    def slow(x):
        time.sleep(2)
        return x

    @task
    def total(values):
        return sum(values)

    @task(retries=0)
    def boom():
        raise ValueError("boom")

    @task(trigger_rule="one_failed")
    def early(ti=None):
        return ti.xcom_pull(task_ids="slow")

    [total(slow.expand(x=items())), boom()] >> early()
"""


def test_an_early_task_pulls_an_ancestor_still_running_without_ending_it(engine, tmp_path):
    # `early` runs once `boom` fails, while `slow`'s instances still run: it pulls what has ended
    # (nothing yet), and they end as they would have.
    path = tmp_path / "early_pull.py"
    path.write_text(EARLY)
    parsed = parse_dag_file(path)
    model = DagModel.from_json(parsed.models[0])
    assert model.task_map["early"].pulls == ("slow",)
    result = engine.run(model, DagSource(str(path), parsed.version), RunRequest())
    states = {(t.task_id, t.map_index): t.state for t in result.tasks}
    assert states == {
        ("items", -1): "success",
        ("slow", 0): "success",
        ("slow", 1): "success",
        ("total", -1): "success",
        ("boom", -1): "failed",
        ("early", -1): "success",
    }
    # no instance had ended: the pull gave None, which pushes no XCom (as in Airflow)
    assert engine.store.get_xcoms(RunKey("early_pull", result.run_id), ["early"]) == {}
