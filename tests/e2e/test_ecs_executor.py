"""Tasks on the amazon provider's ECS executor: each try runs the container entry point
(`python -m airstep.runtime.container`) in a child process, as a Fargate task runs it, its AWS
calls answered by this process's moto through the bridge; the run step hands the request over and
the record step ends the try with the result the container wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from airstep.runtime import task_logs
from airstep.runtime.store import RunKey
from airstep_local.engine import LocalEngine, RunRequest
from helpers import load_model

DAGS = """
import os
from datetime import datetime, timedelta
from airflow.sdk import DAG, Variable, task, BaseHook

ECS = "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"

def noted(context):
    with open(NOTES, "a") as notes:
        notes.write(f"{context['ti'].task_id} {context['ti'].try_number} {os.getpid()}\\n")

with DAG("in_containers", schedule=None, start_date=datetime(2026, 1, 1),
         default_args={"retries": 1, "retry_delay": timedelta(seconds=1)}):
    @task
    def make():
        return {"rows": 41}

    @task(executor=ECS, execution_timeout=timedelta(minutes=30), on_success_callback=noted,
          executor_config={"overrides": {"cpu": "2048", "memory": "8192"}})
    def crunch(made, ti=None):
        if ti.try_number == 1:
            raise ConnectionError("the warehouse hung up")
        login = BaseHook.get_connection("warehouse").login
        print(f"crunching {made['rows']} rows as {login}")
        return {"rows": made["rows"] + 1, "pid": os.getpid(), "threshold": Variable.get("threshold")}

    @task
    def report(crunched):
        return crunched["rows"]

    report(crunch(make()))

with DAG("container_ends", schedule=None, start_date=datetime(2026, 1, 1),
         default_args={"executor": "AwsEcsExecutor", "retries": 0}):
    @task
    def dies():
        os._exit(3)

    @task(execution_timeout=timedelta(seconds=1))
    def overruns():
        import time
        for _ in range(100):
            time.sleep(0.1)

    @task
    def skips():
        from airflow.exceptions import AirflowSkipException
        raise AirflowSkipException("nothing new")

    @task(trigger_rule="all_done", executor="LocalExecutor")
    def on_lambda():
        return os.getpid()

    [dies(), overruns(), skips()] >> on_lambda()
"""


@pytest.fixture
def dag_file(tmp_path: Path) -> tuple[Path, Path]:
    notes = tmp_path / "notes.txt"
    path = tmp_path / "containers.py"
    path.write_text(f"NOTES = {str(notes)!r}\n" + DAGS)
    return path, notes


@pytest.fixture
def local() -> Any:
    with LocalEngine() as engine:
        engine.seed_secrets(
            {"warehouse": {"conn_type": "postgres", "login": "loader", "password": "s3cr3t-pw"}}, {"threshold": "7"}
        )
        yield engine


def _instances(engine: LocalEngine, dag_id: str, run_id: str) -> dict[str, Any]:
    return {ti.task_id: ti for ti in engine.store.task_instances(RunKey(dag_id, run_id))}


def test_a_try_runs_in_its_own_process_with_connections_variables_xcoms_retries_and_callbacks(local, dag_file):
    path, notes = dag_file
    model, source = load_model(path, "in_containers")
    result = local.run(model, source, RunRequest(fast_retries=True))
    ti = _instances(local, "in_containers", result.run_id)
    assert result.state == "success", [(t.task_id, t.state, t.error) for t in ti.values()]
    assert ti["crunch"].try_number == 2  # the first try's error was retried, as for a Lambda try
    xcoms = local.store.get_xcoms(RunKey("in_containers", result.run_id), ["crunch", "report"])
    crunched = xcoms["crunch"]
    assert crunched["rows"] == 42 and crunched["threshold"] == "7"
    assert crunched["pid"] != os.getpid()  # the container's own process
    assert xcoms["report"] == 42  # a Lambda task downstream pulls its XCom as any other
    # the callback ran in the container, after the try it followed
    assert notes.read_text() == f"crunch 2 {crunched['pid']}\n"
    log = task_logs.read_file(local.logs_dir, task_logs.TryKey("in_containers", result.run_id, "crunch", -1, 2))
    assert log is not None and "crunching 41 rows as loader" in log
    first = task_logs.read_file(local.logs_dir, task_logs.TryKey("in_containers", result.run_id, "crunch", -1, 1))
    assert first is not None and "ConnectionError: the warehouse hung up" in first
    # the Fargate task's size came from executor_config, the request from the run step
    from airstep_local.sync_integrations import ECS_RUNS

    (last, *_) = [r["request"] for r in reversed(ECS_RUNS) if "in_containers" in json.dumps(r["request"])]
    assert (last["Overrides"]["Cpu"], last["Overrides"]["Memory"], last["LaunchType"]) == ("2048", "8192", "FARGATE")


def test_a_container_that_dies_overruns_or_skips_ends_its_try_as_a_worker_would(local, dag_file):
    path, _ = dag_file
    model, source = load_model(path, "container_ends")
    result = local.run(model, source, RunRequest())
    ti = _instances(local, "container_ends", result.run_id)
    states = {task_id: (t.state.value, t.try_number) for task_id, t in ti.items()}
    assert states == {
        "dies": ("failed", 1),
        "overruns": ("failed", 1),
        "skips": ("skipped", 1),
        "on_lambda": ("success", 1),
    }
    assert ti["dies"].error.startswith("the task's container ended without reporting a result: States.TaskFailed")
    assert "exit code 3" in ti["dies"].error
    assert ti["overruns"].error.startswith("AirflowTaskTimeout")
    pid = local.store.get_xcoms(RunKey("container_ends", result.run_id), ["on_lambda"])["on_lambda"]
    assert pid == os.getpid()  # LocalExecutor: the Lambda executor, in this process locally


def test_a_try_in_a_container_holds_no_lambda_while_it_runs(dag_file):
    """The try's call is ecs:runTask.sync between the runner's two steps; its state's limit is the
    execution_timeout plus the container's start."""
    from airstep_compiler.compile import CompileOptions, compile_dag
    from airstep_local.containers import LOCAL_TARGET

    path, _ = dag_file
    model, source = load_model(path, "in_containers")
    definition = compile_dag(model, source, CompileOptions(container=LOCAL_TARGET)).definition
    branch = definition["States"]["crunch"]["Branches"][0]["States"]
    call = branch["crunch@call"]
    assert call["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    assert call["Parameters"]["TaskDefinition"] == LOCAL_TARGET.task_definition
    assert call["Parameters"]["Overrides.$"] == "$.begun.outcome.call.Overrides"
    assert call["TimeoutSeconds"] == 30 * 60 + 600
    lambdas = [s for s in branch.values() if s.get("Resource") == "arn:aws:states:::lambda:invoke"]
    assert len(lambdas) == 2  # the runner's run and record steps: the task's code runs in the container


ONCE = """
import os
from datetime import datetime
from airflow.sdk import DAG, task

with DAG("recorded_once", schedule=None, start_date=datetime(2026, 1, 1), default_args={"retries": 2}):
    @task(executor="AwsEcsExecutor")
    def count(ti=None):
        with open(RUNS, "a") as runs:
            runs.write(f"{ti.try_number}\\n")
        return 7

    count()
"""


def test_a_try_whose_record_step_was_lost_ends_with_its_containers_result_without_another_container(tmp_path):
    """The record step's Lambda fails after the container wrote the result: the try's branch runs
    again (the task's Retry), and its run step finds the result and ends the try with it."""
    from airstep_local.faults import Faults

    runs = tmp_path / "runs.txt"
    path = tmp_path / "once.py"
    path.write_text(f"RUNS = {str(runs)!r}\n" + ONCE)
    lost: list[str] = []
    with LocalEngine() as engine:

        def lose_the_first_record(function: str, event: dict[str, Any]) -> str | None:
            if function == engine.names.run_task and event.get("action") == "end_call" and not lost:
                lost.append(function)
                return "Unknown"  # Lambda.Unknown: the step's own retriers leave it to the task's
            return None

        engine.session.faults = Faults(invoke=lose_the_first_record)
        model, source = load_model(path, "recorded_once")
        result = engine.run(model, source, RunRequest(fast_retries=True))
        ti = _instances(engine, "recorded_once", result.run_id)["count"]
        assert lost and result.state == "success", (ti.state, ti.error)
        assert (ti.try_number, runs.read_text()) == (1, "1\n")  # one try, one container
        assert engine.store.get_xcoms(RunKey("recorded_once", result.run_id), ["count"])["count"] == 7


MAPPED = """
from datetime import datetime
from airflow.sdk import DAG, task

with DAG("mapped_containers", schedule=None, start_date=datetime(2026, 1, 1)):
    @task(executor="AwsEcsExecutor")
    def each(x):
        return x

    each.expand(x=[1, 2])
"""


def test_what_cannot_run_in_a_container_is_a_compile_error_naming_the_task(tmp_path, dag_file):
    from airstep_compiler.compile import CompileError, CompileOptions, compile_dag

    path = tmp_path / "mapped.py"
    path.write_text(MAPPED)
    model, source = load_model(path)
    with pytest.raises(CompileError, match="task 'each': a mapped AwsEcsExecutor") as mapped:
        compile_dag(model, source)
    assert mapped.value.line == 10
    # an environment without ContainerSubnets: such a DAG is refused at upload, naming the task
    model, source = load_model(dag_file[0], "in_containers")
    with pytest.raises(CompileError, match="task 'crunch': executor AwsEcsExecutor .* ContainerSubnets"):
        compile_dag(model, source, CompileOptions(container=None))


def test_compile_prices_a_second_of_each_container_size_the_dag_uses(tmp_path, dag_file):
    from test_cli import airstep

    compiled = airstep("compile", str(dag_file[0]), "-o", str(tmp_path), "--dag-id", "in_containers")
    assert compiled.returncode == 0, compiled.stderr
    said = " ".join(compiled.stdout.split())
    # 2 vCPU at $0.03238 an hour and 8 GB at $0.00356 (Fargate, Linux/ARM, us-east-1)
    assert (
        "$0.0000259 per second of a try on the ECS executor at 2 vCPU, 8 GB (Fargate arm64, a minute at least)" in said
    )
