"""Branching beyond what Airflow's answers pin (tests/conformance/airflow_files/airstep_branching.py):
the same outcome when every task is compiled behind a gate, a branch to an unknown task, and paths
skipped for certain jumped over by their guard (docs/design.md, "Skipped paths")."""

from __future__ import annotations

import textwrap

from airstep.runtime.store import RunKey
from airstep_local.engine import LocalEngine, RunRequest
from conformance.recorded import AIRFLOW_FILES, FILE_RECORDS
from helpers import EXAMPLES, KeepMachines, entered_states, executions, load_model


def _run(path, gate_every_task=False, dag_id=None):
    model, source = load_model(path, dag_id)
    with LocalEngine() as engine:
        result = engine.run(model, source, RunRequest(gate_every_task=gate_every_task))
        values = engine.store.get_xcoms(RunKey(result.dag_id, result.run_id), [t.task_id for t in result.tasks])
    return result, values


def test_gated_compilation_branches_as_airflow_does():
    [record] = [r for r in FILE_RECORDS if r["dag_id"] == "airstep_branching"]
    result, _ = _run(AIRFLOW_FILES / "airstep_branching.py", gate_every_task=True)
    tasks = {t.task_id: {"state": str(t.state), "try_number": t.try_number} for t in result.tasks}
    assert {"run_state": result.state.value, "tasks": tasks} == record["airflow"]


def test_a_branch_to_an_unknown_task_fails_the_branching_task(tmp_path):
    path = tmp_path / "unknown.py"
    path.write_text(
        textwrap.dedent(
            """
            from airstep import DAG, EmptyOperator, task
            with DAG("unknown"):
                @task.branch
                def pick():
                    return "nowhere"
                pick() >> EmptyOperator(task_id="next")
            """
        )
    )
    result, _ = _run(path)
    states = {t.task_id: str(t.state) for t in result.tasks}
    assert states == {"pick": "failed", "next": "upstream_failed"}
    [pick] = [t for t in result.tasks if t.task_id == "pick"]
    assert "Invalid tasks found: {'nowhere'}" in pick.error


def test_a_task_may_skip_only_tasks_downstream_of_it(tmp_path):
    path = tmp_path / "stray.py"
    path.write_text(
        textwrap.dedent(
            """
            from airstep import DAG, EmptyOperator, PythonOperator
            from airstep.errors import DownstreamTasksSkipped

            def skip_a_sibling():
                raise DownstreamTasksSkipped(["sibling"])

            with DAG("stray"):
                EmptyOperator(task_id="sibling")
                PythonOperator(task_id="rogue", python_callable=skip_a_sibling) >> EmptyOperator(task_id="after")
            """
        )
    )
    result, _ = _run(path)
    assert {t.task_id: str(t.state) for t in result.tasks} == {
        "sibling": "success",
        "rogue": "failed",
        "after": "upstream_failed",
    }
    [rogue] = [t for t in result.tasks if t.task_id == "rogue"]
    assert "may skip only tasks downstream of it; it asked to skip ['sibling']" in rogue.error


def _entered(engine, dag_id):
    [execution] = executions(engine.sfn, dag_id)
    return entered_states(engine.sfn, execution["executionArn"])


def test_a_path_skipped_for_certain_is_jumped_over_with_its_skips_recorded(engine, run_file, monkeypatch):
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    result = run_file(EXAMPLES / "branch_on_new_data.py", conf={"files": 0})
    states = {t.task_id: str(t.state) for t in result.tasks}
    assert states == {
        "any_new_files": "success",
        "nothing_to_do": "success",
        "extract": "skipped",
        "transform": "skipped",
        "load": "skipped",
        "done": "success",
    }
    entered = _entered(engine, "branch_on_new_data")
    assert "bypass@1" in entered
    assert not {"extract", "transform", "load"} & set(entered)


def test_a_followed_path_runs_behind_its_guard(engine, run_file, monkeypatch):
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    result = run_file(EXAMPLES / "branch_on_new_data.py", conf={"files": 2})
    states = {t.task_id: str(t.state) for t in result.tasks}
    assert states["nothing_to_do"] == "skipped"
    assert {states[t] for t in ("extract", "transform", "load", "done")} == {"success"}
    entered = _entered(engine, "branch_on_new_data")
    assert entered.index("bypass@1") < entered.index("extract") < entered.index("load")
    assert engine.store.get_xcoms(RunKey(result.dag_id, result.run_id), ["load"])["load"] == 2


def test_a_branch_that_fails_leaves_the_guarded_path_to_the_trigger_rules(engine, dag_file, run_file, monkeypatch):
    path = dag_file(
        """
        from airstep import DAG, EmptyOperator, task
        with DAG("failing_branch"):
            @task.branch
            def pick():
                raise ValueError("no answer")
            first, second, third = (EmptyOperator(task_id=t) for t in ("first", "second", "third"))
            pick() >> [first, EmptyOperator(task_id="other")]
            first >> second >> third
        """
    )
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    result = run_file(path)
    states = {t.task_id: str(t.state) for t in result.tasks}
    assert states == {
        "pick": "failed",
        "first": "upstream_failed",
        "second": "upstream_failed",
        "third": "upstream_failed",
        "other": "upstream_failed",
    }
    entered = _entered(engine, "failing_branch")
    assert "bypass@1" in entered and {"first", "second", "third"} <= set(entered)


def test_skips_recorded_for_a_bypassed_path_end_when_their_runner_would_have_settled_them(dag_file, run_file):
    """The owner here is skipped by a short circuit and runs late (it waits for `slow`); its path's
    skips still end right after its own, before `fails` fails, so the all_success join is skipped
    (as Airflow skips it, and as the path's own runners would), not upstream_failed."""
    path = dag_file(
        """
        import time
        from airstep import DAG, EmptyOperator, chain, task

        with DAG("late_owner"):
            @task.short_circuit(ignore_downstream_trigger_rules=False)
            def circuit():
                return False

            @task
            def slow():
                time.sleep(3)

            @task.branch
            def pick():
                return "h"

            @task
            def fails():
                time.sleep(1)
                raise ValueError("late failure")

            h, c2, c3, join = (EmptyOperator(task_id=t) for t in ("h", "c2", "c3", "join"))
            owner = pick()
            [circuit(), slow()] >> owner
            chain(owner, h, c2, c3, join)
            fails() >> join
        """
    )
    result = run_file(path)
    states = {t.task_id: str(t.state) for t in result.tasks}
    assert states["fails"] == "failed" and states["pick"] == "skipped"
    assert (states["join"], result.state.value) == ("skipped", "success")
    ends = {t.task_id: t.end for t in result.tasks}
    assert ends["pick"] < ends["h"] < ends["c2"] < ends["c3"] < ends["fails"]
