"""Task groups as Airflow builds them; the behaviour against Airflow itself is pinned by
tests/conformance/airflow_files/airstep_task_groups.py and Airflow's own task-group examples."""

from __future__ import annotations

import pytest

from airstep import DAG, EmptyOperator, TaskGroup, task, task_group
from airstep.errors import DagDefinitionError
from airstep.model import DagModel
from airstep_cli.main import mermaid


def test_ids_default_args_and_model():
    with DAG("groups", default_args={"retries": 1}) as dag:
        with TaskGroup("outer", default_args={"retries": 3}) as outer:
            EmptyOperator(task_id="a")
            with TaskGroup("inner", prefix_group_id=False):
                EmptyOperator(task_id="b", retries=0)
        EmptyOperator(task_id="c") >> outer
    assert {t.task_id: t.retries for t in dag.tasks} == {"outer.a": 3, "b": 0, "c": 1}
    model = DagModel.from_dag(dag)
    assert model.task_groups == (("outer", None, ""), ("outer.inner", "outer", ""))
    assert {t.task_id: t.task_group for t in model.tasks} == {"outer.a": "outer", "b": "outer.inner", "c": None}
    assert {t.task_id: t.upstream for t in model.tasks} == {"outer.a": ("c",), "b": ("c",), "c": ()}
    assert DagModel.from_json(model.to_json()) == model
    assert '    subgraph outer_1_0["outer"]' in mermaid(model)


def test_a_reused_group_id_is_an_error_unless_decorated():
    with DAG("twice"):
        TaskGroup("g")
        with pytest.raises(DagDefinitionError, match="group_id 'g' is already used"):
            TaskGroup("g")

    @task_group
    def g2():
        EmptyOperator(task_id="t")

    with DAG("decorated") as dag:
        g2()
        g2()
    assert sorted(dag.task_dict) == ["g2.t", "g2__1.t"]


def test_a_task_cannot_take_a_group_id():
    with DAG("clash"):
        TaskGroup("same", prefix_group_id=False)
        with pytest.raises(DagDefinitionError, match="already a task group's id"):
            EmptyOperator(task_id="same")


def test_group_default_args_are_checked_like_the_dags():
    with DAG("bad"), pytest.raises(DagDefinitionError, match="unknown default_args key"):
        TaskGroup("g", default_args={"email_on_failure": True})


def test_taskflow_names_are_unique_within_their_group():
    with DAG("names") as dag:

        @task
        def step():
            return 1

        with TaskGroup("g"):
            step()
            step()
        step()
    assert sorted(dag.task_dict) == ["g.step", "g.step__1", "step"]
