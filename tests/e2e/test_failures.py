"""Failures never abort the rest of the graph; trigger rules, skips, timeouts and gates behave."""

import json
from datetime import UTC

from airstep.contract import Payload
from airstep.runtime import task_runner
from airstep.runtime.store import RunKey
from airstep.runtime.store.schema import GATE_PREFIX


def states(result):
    return {t.task_id: t.state for t in result.tasks}


def test_failure_does_not_abort_other_branches(dag_file, run_file):
    path = dag_file(
        """
        from airstep import DAG, task, EmptyOperator

        with DAG("partial"):
            @task
            def boom():
                raise ValueError("bad row 17")

            @task
            def fine():
                return 1

            @task
            def after(x):
                return x

            cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
            alert = EmptyOperator(task_id="alert", trigger_rule="one_failed")
            b = boom()
            after(b) >> cleanup
            f = fine()
            [b, f] >> alert
            f >> cleanup
        """
    )
    result = run_file(path)
    # As in Airflow, the run's state follows its leaves (cleanup, alert), which both succeeded.
    assert result.state == "success"
    assert states(result) == {
        "boom": "failed",
        "fine": "success",
        "after": "upstream_failed",
        "cleanup": "success",
        "alert": "success",
    }
    boom = next(t for t in result.tasks if t.task_id == "boom")
    assert boom.error == "ValueError: bad row 17"


def test_leaf_success_after_handled_failure_is_a_successful_run(dag_file, run_file):
    path = dag_file(
        """
        from airstep import DAG, task, EmptyOperator

        with DAG("handled"):
            @task
            def boom():
                raise RuntimeError("nope")

            boom() >> EmptyOperator(task_id="recover", trigger_rule="all_failed")
        """
    )
    result = run_file(path)
    assert states(result) == {"boom": "failed", "recover": "success"}
    assert result.state == "success"  # Airflow: the run's state follows its leaves


def test_skip_and_fail_exceptions(dag_file, run_file):
    path = dag_file(
        """
        from airstep import DAG, task, AirflowSkipException, AirflowFailException

        with DAG("steer", default_args={"retries": 3, "retry_delay": 1}):
            @task
            def maybe():
                raise AirflowSkipException("nothing new")

            @task
            def downstream(x):
                return x

            @task
            def fatal():
                raise AirflowFailException("credentials revoked")

            downstream(maybe())
            fatal()
        """
    )
    result = run_file(path)
    assert states(result) == {"maybe": "skipped", "downstream": "skipped", "fatal": "failed"}
    assert {t.task_id: t.try_number for t in result.tasks}["fatal"] == 1


def test_bash_exit_codes(dag_file, run_file):
    path = dag_file(
        """
        from airstep import DAG, BashOperator

        with DAG("codes"):
            BashOperator(task_id="skip_me", bash_command="exit 99")
            BashOperator(task_id="fail_me", bash_command="echo oops >&2; exit 3")
        """
    )
    result = run_file(path)
    assert states(result) == {"skip_me": "skipped", "fail_me": "failed"}
    failed = next(t for t in result.tasks if t.task_id == "fail_me")
    assert "non-zero exit code 3" in failed.error


def test_timeout_is_retried_then_failed(dag_file, run_file):
    path = dag_file(
        """
        import time
        from airstep import DAG, task

        with DAG("slow"):
            @task(execution_timeout=1, retries=1, retry_delay=1)
            def sleepy():
                time.sleep(2.5)

            @task
            def after(x):
                return x

            after(sleepy())
        """
    )
    result = run_file(path)
    assert states(result) == {"sleepy": "failed", "after": "upstream_failed"}
    sleepy = next(t for t in result.tasks if t.task_id == "sleepy")
    assert sleepy.try_number == 2
    assert sleepy.error == "AirflowTaskTimeout: task timed out after 1 s (execution_timeout)"


def test_failed_gate_upstream_releases_its_gate(dag_file, run_file):
    # N-shape: c waits on a and b, d on b. When b fails, c and d must still finish (no deadlock).
    path = dag_file(
        """
        import time
        from airstep import DAG, PythonOperator

        def ok():
            time.sleep(0.2)

        def bad():
            raise ValueError("b broke")

        with DAG("n_fail"):
            a = PythonOperator(task_id="a", python_callable=ok)
            b = PythonOperator(task_id="b", python_callable=bad)
            c = PythonOperator(task_id="c", python_callable=ok, trigger_rule="all_done")
            d = PythonOperator(task_id="d", python_callable=ok)
            [a, b] >> c
            b >> d
        """
    )
    result = run_file(path)
    assert states(result) == {"a": "success", "b": "failed", "c": "success", "d": "upstream_failed"}


def test_timed_out_gate_upstream_releases_its_gate(dag_file, run_file):
    path = dag_file(
        """
        import time
        from airstep import DAG, PythonOperator

        def ok():
            return 1

        def hang():
            time.sleep(3)

        with DAG("n_timeout"):
            a = PythonOperator(task_id="a", python_callable=ok)
            b = PythonOperator(task_id="b", python_callable=hang, execution_timeout=1)
            c = PythonOperator(task_id="c", python_callable=ok)
            d = PythonOperator(task_id="d", python_callable=ok, trigger_rule="one_failed")
            [a, b] >> c
            b >> d
        """
    )
    result = run_file(path)
    assert states(result) == {"a": "success", "b": "failed", "c": "upstream_failed", "d": "success"}


def test_a_large_return_value_travels_through_the_xcom_bucket(dag_file, run_file, engine, monkeypatch):
    from helpers import KeepMachines, executions

    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("big"):
            @task
            def huge():
                return {"rows": ["r%06d" % i for i in range(300_000)]}

            @task
            def count(data):
                return len(data["rows"])

            count(huge())
        """
    )
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))
    result = run_file(path)
    assert states(result) == {"huge": "success", "count": "success"}
    key = RunKey(result.dag_id, result.run_id)
    assert engine.store.get_xcoms(key, ["count"]) == {"count": 300_000}
    stored = engine.store.get_task_instances(key, ["huge"])["huge"].xcoms
    assert stored.startswith('"s3://airstep-local-xcoms/xcoms/big/') and len(stored) < 200  # the record: a reference
    assert len(engine.store.get_xcoms(key, ["huge"])["huge"]["rows"]) == 300_000
    history = json.dumps(
        engine.sfn.get_execution_history(executionArn=executions(engine.sfn, "big")[0]["executionArn"]), default=str
    )
    assert "r000001" not in history  # values never enter Step Functions state data


def test_context_injection(dag_file, run_file, engine):
    from datetime import datetime

    path = dag_file(
        """
        from airstep import DAG, task

        with DAG("ctx", params={"who": "world"}):
            @task
            def named(ds, ti, params, dag_run):
                return [ds, ti.try_number, params["who"], dag_run.run_id.startswith("manual__")]

            @task
            def everything(**context):
                return sorted(k for k in context if k in ("ds", "logical_date", "ti", "params"))

            named() >> everything()
        """
    )
    result = run_file(path, logical_date=datetime(2026, 5, 6, 7, 8, tzinfo=UTC))
    values = engine.store.get_xcoms(RunKey(result.dag_id, result.run_id), ["named", "everything"])
    assert values["named"] == ["2026-05-06", 1, "world", True]
    assert values["everything"] == ["ds", "logical_date", "params", "ti"]


def test_failures_inside_a_task_map_release_their_gates(dag_file, run_file):
    # A 3x3 grid is not series-parallel and has 9 tasks: it compiles to an inline Map of gated tasks.
    path = dag_file(
        """
        import time
        from airstep import DAG, PythonOperator

        def ok():
            return 1

        def bad():
            raise ValueError("cell broke")

        def hang():
            time.sleep(3)

        with DAG("grid_fail", default_args={"retries": 0}):
            cells = {}
            for i in range(3):
                for j in range(3):
                    fn = bad if (i, j) == (1, 0) else hang if (i, j) == (0, 2) else ok
                    cells[(i, j)] = PythonOperator(task_id=f"g{i}{j}", python_callable=fn, execution_timeout=1)
            for (i, j), op in cells.items():
                if i:
                    cells[(i - 1, j)] >> op
                if j:
                    cells[(i, j - 1)] >> op
        """
    )
    result = run_file(path)
    assert states(result) == {
        "g00": "success",
        "g01": "success",
        "g02": "failed",
        "g10": "failed",
        "g11": "upstream_failed",
        "g12": "upstream_failed",
        "g20": "upstream_failed",
        "g21": "upstream_failed",
        "g22": "upstream_failed",
    }
    g02 = next(t for t in result.tasks if t.task_id == "g02")
    assert "timed out" in g02.error and "execution_timeout" in g02.error
    assert result.state == "failed"


def test_a_gate_released_twice_or_after_the_run_is_harmless(dag_file, run_file, engine):
    # Gates are released at least once: every caller that sees a gate open sends its token.
    path = dag_file(
        """
        from airstep import DAG, EmptyOperator

        with DAG("n_twice"):
            a, b, c, d = (EmptyOperator(task_id=t) for t in "abcd")
            [a, b] >> c
            b >> d
        """
    )
    result = run_file(path)
    assert result.state == "success"
    key = RunKey("n_twice", result.run_id)
    gates = [i for page in engine.store.table.scan() for i in page if i["sk"]["S"].startswith(GATE_PREFIX)]
    assert {g["sk"]["S"] for g in gates} == {"GATE#c", "GATE#d"}
    ctx = {
        "dag": {"dag_id": "n_twice", "file": str(path), "version": "v", "model": "m"},
        "run": {"dag_id": "n_twice", "run_id": key.run_id},
    }
    for gate in gates:  # the execution has ended: every send is refused, and ignored
        payload = Payload.from_event(
            {"task_id": "b", "signal": [gate["sk"]["S"].removeprefix(GATE_PREFIX)], "ctx": ctx}
        )
        task_runner.Invocation(payload, engine.store, engine.sfn).signal()
