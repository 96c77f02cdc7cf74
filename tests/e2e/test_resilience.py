"""No task fails because of airstep: throttling, runner errors and late tries change no outcome."""

from __future__ import annotations

import time
from collections import Counter

from airstep.contract import Action, Payload
from airstep.runtime.store import RunKey
from airstep.runtime.task_runner import Invocation
from airstep.states import TaskState
from airstep_local.faults import DYNAMODB_THROTTLED, THROTTLED, Faults


def states(result):
    return {t.task_id: (t.state, t.try_number) for t in result.tasks}


def first_calls(count: int, match) -> callable:
    """A fault rule that fails the first `count` calls that `match`."""
    seen = Counter()

    def rule(*call):
        if match(*call) and seen["n"] < count:
            seen["n"] += 1
            return True
        return False

    return rule


def test_throttled_invocations_are_retried_and_the_task_runs_once(dag_file, run_file, engine):
    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("throttled"):
            @task
            def extract():
                return 7

            @task
            def load(x):
                return x * 2

            load(extract())
        """
    )
    throttle = first_calls(2, lambda function, event: event.get("task_id") == "load")
    engine.session.faults = Faults(invoke=lambda f, e: THROTTLED if throttle(f, e) else None)
    result = run_file(path)
    assert engine.session.faults.injected == Counter({f"lambda:{THROTTLED}": 2})
    assert result.state == "success"
    assert states(result) == {"extract": ("success", 1), "load": ("success", 1)}


def test_a_failure_that_cannot_be_recorded_does_not_fail_the_run(dag_file, run_file, engine):
    # `b` times out (Step Functions ends its try), so its failure state must record it and release the
    # gate of `d`; the call to record it fails with an error no retrier matches. The run still ends,
    # and `d` settles `b`.
    path = dag_file(
        """
        import time
        from airstep import DAG, EmptyOperator, PythonOperator

        def hang():
            time.sleep(3)

        with DAG("unrecordable"):
            a, c, d = (EmptyOperator(task_id=t, trigger_rule="all_done") for t in "acd")
            b = PythonOperator(task_id="b", python_callable=hang, execution_timeout=1)
            [a, b] >> c
            b >> d
        """
    )

    def refuse_fail_actions(function, event):
        return "ResourceNotFoundException" if event.get("action") == Action.FAIL else None

    engine.session.faults = Faults(invoke=refuse_fail_actions)
    result = run_file(path, fast_retries=True)
    assert result.state == "success"
    assert {t.task_id: t.state for t in result.tasks} == {"a": "success", "b": "failed", "c": "success", "d": "success"}


def test_a_runner_error_is_retried_without_using_a_task_retry(dag_file, run_file, engine):
    # The store is throttled when the try ends, after the task's code succeeded (the SDK's own retries
    # exhausted): the runner's error is retried, and the task succeeds on its next try.
    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("store_throttled"):
            @task
            def only():
                return 1

            only()
        """
    )
    end_of_try = first_calls(
        1, lambda operation, request: operation == "put_item" and "end_date" in request.get("Item", {})
    )
    engine.session.faults = Faults(dynamodb=lambda op, req: DYNAMODB_THROTTLED if end_of_try(op, req) else None)
    result = run_file(path)
    assert result.state == "success"
    assert states(result) == {"only": ("success", 2)}


# A DAG whose `skipped` task follows one that skips itself (the tests below add what follows).
SKIPPED_FIRST = """
        from airflow.exceptions import AirflowSkipException
        from airstep import DAG, task

        with DAG("{dag_id}"):
            @task
            def nothing_new():
                raise AirflowSkipException("no new data")

            @task
            def skipped():
                return 1
"""


def runner_down(engine, *task_ids: str):
    """A fault rule: the task runner is refused every time it is invoked to run one of `task_ids`."""

    def rule(function, event):
        down = function == engine.names.run_task and event.get("task_id") in task_ids
        return "ResourceNotFoundException" if down and not event.get("action") else None

    return rule


def test_a_task_its_runner_never_began_is_settled_by_its_trigger_rule_when_that_would_not_run_it(
    dag_file, run_file, engine
):
    # The runner fails every time it is invoked for `skipped` and `unrun`, before it decided anything.
    # Their trigger rules would not have run them (their upstream was skipped): the run's readers settle
    # them skipped, as Airflow's scheduler would, not failed as tasks that never started.
    path = dag_file(
        SKIPPED_FIRST.format(dag_id="runner_down")
        + """
            @task
            def unrun(x):
                return x

            after = skipped()
            nothing_new() >> after
            unrun(after)
        """
    )

    engine.session.faults = Faults(invoke=runner_down(engine, "skipped", "unrun"))
    result = run_file(path, fast_retries=True)
    assert {t.task_id: t.state for t in result.tasks} == {
        "nothing_new": "skipped",
        "skipped": "skipped",
        "unrun": "skipped",
    }, [(t.task_id, t.state, t.error) for t in result.tasks]


def test_a_task_whose_run_state_failed_before_its_runner_began_is_settled_by_its_trigger_rule(
    dag_file, run_file, engine
):
    # As above, but gates wait on `skipped` (the DAG is not series-parallel), so its failure state records
    # the error Step Functions caught (here a refused invocation; in CI, once, the run state's timeout
    # under load) and releases the gate: it too settles by the rule, as Airflow's scheduler would.
    path = dag_file(
        SKIPPED_FIRST.format(dag_id="runner_down_gated")
        + """
            @task
            def other():
                return 2

            @task(trigger_rule="all_done")
            def join(x, y):
                return x

            @task(trigger_rule="all_done")
            def alone(x):
                return x

            after = skipped()
            nothing_new() >> after
            join(after, other())
            alone(after)
        """
    )

    engine.session.faults = Faults(invoke=runner_down(engine, "skipped", "other"))
    result = run_file(path, fast_retries=True)
    assert {t.task_id: t.state for t in result.tasks} == {
        "nothing_new": "skipped",
        "skipped": "skipped",
        "other": "failed",  # its rule would have run it
        "join": "success",
        "alone": "success",
    }, [(t.task_id, t.state, t.error) for t in result.tasks]
    other = next(t for t in result.tasks if t.task_id == "other")
    assert other.error.startswith("the task never started: the task runner failed before its first try (Lambda.")


def test_a_dag_file_that_fails_to_load_once_is_loaded_again(dag_file, run_file, tmp_path):
    # The DAG file's top level fails the second time it runs (the runner's first load), as a flaky
    # import would: the failure is not cached for the process, and the retried try loads it.
    marker = tmp_path / "loads"
    path = dag_file(
        f"""
        from pathlib import Path
        from airstep import DAG, task

        loads = Path({str(marker)!r})
        count = int(loads.read_text()) + 1 if loads.exists() else 1
        loads.write_text(str(count))
        if count == 2:
            raise ConnectionError("the package index was unreachable")

        with DAG("flaky_import"):
            @task
            def only():
                return 1

            only()
        """
    )
    result = run_file(path)
    assert result.state == "success"
    assert states(result) == {"only": ("success", 1)}


def test_a_python_task_is_stopped_at_its_execution_timeout(dag_file, run_file, tmp_path):
    marker = tmp_path / "finished"
    path = dag_file(
        f"""
        import time
        from pathlib import Path
        from airstep import DAG, task

        with DAG("busy"):
            @task(execution_timeout=1)
            def spin():
                end = time.monotonic() + 3
                while time.monotonic() < end:
                    pass
                Path({str(marker)!r}).write_text("the try kept running past its timeout")

            spin()
        """
    )
    result = run_file(path)
    (spin,) = result.tasks
    assert (spin.state, spin.try_number) == ("failed", 1)
    assert spin.error == "AirflowTaskTimeout: task timed out after 1 s (execution_timeout)"
    assert spin.duration < 3  # the loop alone takes 3 s
    time.sleep(3)
    assert not marker.exists()


def test_a_late_try_neither_signals_nor_overwrites(engine):
    # Try 1 was timed out by Step Functions and try 2 began; try 1 then ends. Its write loses, so it must
    # not tell the gate of its downstream that the task has finished.
    key = RunKey("late", "manual__1")
    store = engine.store
    store.gate_register(key, "down", "token-1", ["up"])
    assert store.begin_try(key, "up", "2026-11-21T02:00:00+00:00").number == 1
    assert store.begin_try(key, "up", "2026-11-21T02:00:05+00:00").number == 2
    ctx = {
        "dag": {"dag_id": "late", "file": "x.py", "version": "v", "model": "m"},
        "run": {"dag_id": "late", "run_id": key.run_id},
    }
    late = Invocation(Payload.from_event({"task_id": "up", "signal": ["down"], "ctx": ctx}), store, engine.sfn)
    outcome = late._close(1, "2026-11-21T02:00:00+00:00", TaskState.SUCCESS)
    assert (outcome.state, outcome.try_number) == (TaskState.RUNNING, 2)
    assert store.gate_arrive(key, "down", "other").arrived == frozenset({"other"})  # "up" never arrived


def test_task_code_runs_only_in_the_executor(dag_file, run_file, tmp_path):
    # The task runner does the bookkeeping from the graph model; only the executor loads the DAG file
    # (and so runs its top level and its tasks' code).
    loads = tmp_path / "loads"
    path = dag_file(
        f"""
        from pathlib import Path
        from airstep import DAG, task
        from airstep_local.aws import current_function

        with Path({str(loads)!r}).open("a") as log:
            log.write(f"{{current_function.get()}}\\n")

        with DAG("who_runs"):
            @task
            def first():
                with Path({str(loads)!r}).open("a") as log:
                    log.write(f"task:{{current_function.get()}}\\n")
                return 1

            @task
            def second(x):
                return x + 1

            second(first())
        """
    )
    loads.unlink(missing_ok=True)
    result = run_file(path)
    assert result.state == "success"
    # "None": the test itself loaded the file to build the model, outside any function
    assert loads.read_text().splitlines() == ["None", "airstep-local-execute-task", "task:airstep-local-execute-task"]


def test_a_run_whose_final_event_was_lost_is_settled_and_alarmed(dag_file, engine, capsys):
    # Step Functions' status events are best effort: the run was seen starting, its end was never
    # reported. The reconciler asks Step Functions and applies the answer as the tracker would.
    from datetime import UTC, datetime, timedelta

    from airstep.runtime.run_reconciler import reconcile_runs
    from helpers import load_model

    path = dag_file(
        """
        import time
        from airstep import DAG, task

        with DAG("abandoned"):
            @task
            def slow():
                time.sleep(1)

            slow()
        """
    )
    model, source = load_model(path)
    engine.session.listener = None
    compiled_run = engine.start(model, source)  # started and seen RUNNING; then aborted, with no event
    key = RunKey("abandoned", compiled_run.run_id)
    while not engine.store.get_task_instances(key, ["slow"]):  # moto fails (not aborts) an execution
        time.sleep(0.02)  # stopped while it is entering a Task state: stop it once the task runs
    engine.sfn.stop_execution(executionArn=compiled_run.execution_arn, cause="an operator stopped it")
    while engine.sfn.describe_execution(executionArn=compiled_run.execution_arn)["status"] == "RUNNING":
        time.sleep(0.05)  # moto stops an execution once its current state is done; AWS does at once
    assert engine.store.get_run(key).state == "running"
    functions = engine.session.client("lambda")
    assert reconcile_runs(engine.store, engine.sfn, functions)["settled"] == []  # too recent: events may still come
    later = datetime.now(UTC) + timedelta(minutes=11)
    (settled,) = reconcile_runs(engine.store, engine.sfn, functions, now=later)["settled"]
    assert (settled["status"], settled["tracked"]) == ("ABORTED", True)
    record = engine.store.get_run(key)
    assert (record.state, record.exec_status) == ("failed", "ABORTED")
    assert '"RunsAborted"' in capsys.readouterr().out  # the alarm's metric
    assert reconcile_runs(engine.store, engine.sfn, functions, now=later)["settled"] == []  # no longer active


def test_a_task_runs_on_the_executor_its_queue_names(dag_file, run_file, tmp_path):
    # Airflow's `queue` picks the worker pool; in airstep, the executor function and so the task role
    loads = tmp_path / "where"
    path = dag_file(
        f"""
        from pathlib import Path
        from airstep import DAG, task
        from airstep_local.aws import current_function

        def where():
            with Path({str(loads)!r}).open("a") as log:
                log.write(f"{{current_function.get()}}\\n")

        with DAG("queues", default_args={{"queue": "warehouse"}}):
            @task
            def load():
                where()

            @task(queue="default")
            def report():
                where()

            load() >> report()
        """
    )
    result = run_file(path)
    assert result.state == "success"
    assert loads.read_text().splitlines() == ["airstep-local-execute-task-warehouse", "airstep-local-execute-task"]
