"""TriggerDagRunOperator as a user runs it locally: `airstep run` deploys the DAGs of the file's
folder, the task runner has start-run start the run the operator asks for, the task succeeds, skips
or fails as Airflow 3.3's task runner decides (tests/conformance holds Airflow's own answers for the
same shapes), waits for the run with wait_for_completion, and the task's callbacks run for the
outcome the runner decided."""

import json

from test_cli import airstep

FLOW = """
from datetime import datetime, timedelta
from airflow.sdk import DAG, Param, task
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

def said(context):
    ti = context["ti"]
    ran = ti.xcom_pull(key="trigger_run_id")
    print(f"CALLBACK {ti.task_id} try {ti.try_number}: {context.get('exception')} ran {ran}")

with DAG("target_dag", schedule=None, start_date=datetime(2026, 1, 1),
         params={"x": Param(1, type="integer"), "fail": Param(False, type="boolean")}):
    @task
    def t(params=None):
        assert not params["fail"], "asked to fail"
        return params["x"]
    t()

callbacks = {name: said for name in ("on_success_callback", "on_failure_callback", "on_retry_callback",
                                     "on_skipped_callback")}
with DAG("controller", schedule=None, start_date=datetime(2026, 1, 1), default_args=callbacks):
    first = TriggerDagRunOperator(task_id="first", trigger_dag_id="{{ 'target' }}_dag",
                                  trigger_run_id="fixed_{{ run_id }}", conf={"x": 5},
                                  wait_for_completion=True, poke_interval=1)
    again = TriggerDagRunOperator(task_id="again", trigger_dag_id="target_dag", trigger_run_id="fixed_{{ run_id }}",
                                  retries=2)
    skip = TriggerDagRunOperator(task_id="skip", trigger_dag_id="target_dag", trigger_run_id="fixed_{{ run_id }}",
                                 skip_when_already_exists=True)
    missing = TriggerDagRunOperator(task_id="missing", trigger_dag_id="nope", retries=1,
                                    retry_delay=timedelta(seconds=0))
    failing = TriggerDagRunOperator(task_id="failing", trigger_dag_id="target_dag", conf={"fail": True},
                                    wait_for_completion=True, poke_interval=1)

    @task
    def read(ti=None, run_id=None):
        assert ti.xcom_pull(task_ids="first", key="trigger_run_id") == f"fixed_{run_id}"

    first >> [again, skip, missing, failing, read()]
"""


def test_a_triggered_run_starts_waits_and_decides_the_task_as_airflow_does(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    ran = airstep("run", "flow.py", "--dag-id", "controller", "--fast-retries", "--json", cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr  # tasks failed, as they should
    result = json.loads(ran.stdout)
    states = {t["task_id"]: (t["state"], t["try_number"]) for t in result["tasks"]}
    assert states == {
        "first": ("success", 1),  # triggered, waited for the run, which succeeded
        "again": ("failed", 1),  # the run exists: failed without its retries
        "skip": ("skipped", 1),
        "missing": ("failed", 2),  # no such DAG: retried
        "failing": ("failed", 1),  # the run it waited for failed
        "read": ("success", 1),  # pulled the XCom trigger_run_id
    }
    triggered = sorted((r["dag_id"], r["run_id"].startswith("fixed_"), r["state"]) for r in result["triggered_runs"])
    assert triggered == [("target_dag", False, "failed"), ("target_dag", True, "success")]
    for line in (
        "CALLBACK first try 1: None ran fixed_manual__",  # its ti pulls what the try pushed
        "CALLBACK skip try 1: None",
        "CALLBACK again try 1: A Dag Run already exists for Dag target_dag with run id fixed_",
        "CALLBACK missing try 1: Dag id nope not found",  # on_retry_callback
        "CALLBACK missing try 2: Dag id nope not found",  # on_failure_callback
        "CALLBACK failing try 1: target_dag failed with failed state failed",
    ):
        assert line in ran.stderr, line

    fixed = next(r["run_id"] for r in result["triggered_runs"] if r["run_id"].startswith("fixed_"))
    shown = json.loads(airstep("runs", "show", fixed, "--dag-id", "target_dag", "--json", cwd=tmp_path).stdout)
    assert shown["triggered_by"] == "operator" and shown["run_type"] == "operator_triggered"  # as Airflow 3.3
    assert shown["triggering_task"] == {
        "dag_id": "controller",
        "run_id": result["run_id"],
        "task_id": "first",
        "map_index": -1,
        "try_number": 1,
    }
    assert (
        "triggering task: controller.first"
        in airstep("runs", "show", fixed, "--dag-id", "target_dag", cwd=tmp_path).stdout
    )


def test_what_airstep_cannot_do_is_refused_where_it_is_written(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from datetime import datetime\n"
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator\n\n"
        "with DAG('bad', schedule=None, start_date=datetime(2026, 1, 1)):\n"
        "    TriggerDagRunOperator(task_id='t', trigger_dag_id='x', reset_dag_run=True)\n"
    )
    proc = airstep("compile", "bad.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bad.py:6: TriggerDagRunOperator: reset_dag_run is not supported by airstep" in proc.stderr
    (tmp_path / "bad.py").write_text(
        (tmp_path / "bad.py").read_text().replace("reset_dag_run=True", "failed_states=['broken']")
    )
    proc = airstep("compile", "bad.py", cwd=tmp_path)
    assert "failed_states: 'broken' is not a DAG run state" in proc.stderr


def test_compile_says_what_a_wait_for_completion_costs(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    proc = airstep("compile", "flow.py", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "TriggerDagRunOperator first: its try asks start-run for the run" in proc.stdout
    assert "TriggerDagRunOperator again" not in proc.stdout  # no wait: one run state


ONE_TRIGGER = """
from datetime import datetime
from airflow.sdk import DAG, task
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

with DAG("target_dag", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def t():
        return 1
    t()

with DAG("controller", schedule=None, start_date=datetime(2026, 1, 1)):
    TriggerDagRunOperator(task_id="kick", trigger_dag_id="target_dag")
"""


def test_a_runner_retried_after_the_run_started_starts_no_second_run(tmp_path):
    """start-run started the run, then the runner failed before it recorded the try (here: its write
    is throttled once); Step Functions retries the runner, which asks again for the request kept on
    the try's record instead of running the operator again (a new `now`, a new run id)."""
    from airstep.loader import load_dag_file
    from airstep.model import DagModel
    from airstep_compiler import DagSource
    from airstep_local.engine import LocalEngine, RunRequest
    from airstep_local.faults import DYNAMODB_THROTTLED, Faults

    path = tmp_path / "flow.py"
    path.write_text(ONE_TRIGGER)
    loaded = load_dag_file(path)
    source = DagSource(str(path), loaded.version)
    models = {dag_id: DagModel.from_dag(dag) for dag_id, dag in loaded.dags.items()}
    failed_once = []

    def end_try_fails_once(operation, request):
        item = request.get("Item", {})
        closing = operation == "put_item" and item.get("sk", {}).get("S", "").startswith("TI#kick#")
        if closing and item.get("state", {}).get("S") == "success" and not failed_once:
            failed_once.append(item)
            return DYNAMODB_THROTTLED
        return None

    with LocalEngine() as engine:
        engine.deploy_triggerable([(model, source) for model in models.values()], RunRequest(fast_retries=True))
        engine.session.faults = Faults(dynamodb=end_try_fails_once)
        result = engine.run(models["controller"], source, RunRequest(fast_retries=True))
        triggered = engine.triggered_results()
    assert failed_once, "the fault was never injected"
    assert [(t.task_id, str(t.state), t.try_number) for t in result.tasks] == [("kick", "success", 1)]
    assert [(r.dag_id, r.state.value) for r in triggered] == [("target_dag", "success")]
