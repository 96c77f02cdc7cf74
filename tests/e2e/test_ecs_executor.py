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
