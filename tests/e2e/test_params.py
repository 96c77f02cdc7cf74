"""Params validated as Airflow 3.3 validates them when it creates a run (create_dagrun ->
ParamsDict.validate): the DAG's params overridden by conf, each checked against its JSON schema in
order, the first invalid one refusing the run with "Invalid input for param <name>: <reason>".
Airflow's answers were read from its own dag.test() (the oracle) on these DAGs:
- default 5 for `type: string`      -> "Invalid input for param x: 5 is not of type 'string'"
- Param(type="integer"), no conf     -> "Invalid input for param x: No value passed" (no run)
- conf {"x": 0} for minimum 1        -> "Invalid input for param x: 0 is less than the minimum of 1"
- conf with a key that is no param   -> the task sees it in params
The same refusal holds for a manual run here, `airstep trigger` and a scheduled start."""

import json
import time

import pytest
from typer.testing import CliRunner

from airstep.errors import ParamValidationError
from airstep.runtime.run_starter import start_scheduled_run
from airstep_cli.main import app
from airstep_local.engine import REGION, LocalEngine, RunRequest
from deployed import deployed_platform, upload
from helpers import ROOT, load_model

PARAMS_DAG = """
import pendulum
from airflow.sdk import DAG, Param, task

with DAG(
    "{dag_id}",
    schedule="{schedule}",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={{
        "x": Param({default}type="integer", minimum=1),
        "day": Param("2024-01-01", type="string", format="date"),
        "colour": Param("red", enum=["red", "green"]),
        "plain": 3,
    }},
):
    @task
    def show(params=None):
        return {{k: params[k] for k in sorted(params)}}

    show()
"""


def write(tmp_path, default="5, ", dag_id="checked", schedule="@daily"):
    path = tmp_path / f"{dag_id}.py"
    path.write_text(PARAMS_DAG.format(default=default, dag_id=dag_id, schedule=schedule))
    return path


def run_cli(*args):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("default", "conf", "message"),
    [
        ('"5", ', None, "Invalid input for param x: '5' is not of type 'integer'"),
        ("5, ", '{"x": 0}', "Invalid input for param x: 0 is less than the minimum of 1"),
        ("5, ", '{"day": "2024-13-01"}', "Invalid input for param day: '2024-13-01' is not a 'date'"),
        ("5, ", '{"colour": "blue"}', "Invalid input for param colour: 'blue' is not one of ['red', 'green']"),
        ("", None, "Invalid input for param x: No value passed"),
    ],
)
def test_a_bad_param_refuses_the_local_run(tmp_path, monkeypatch, default, conf, message):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, default)
    result = run_cli("run", str(path), *(["--conf", conf] if conf else []))
    assert result.exit_code == 1
    assert f"DAG 'checked': {message} (no run started)" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".airstep").exists()  # no local history was even opened


def test_the_engine_writes_nothing_for_a_bad_conf(tmp_path):
    model, source = load_model(write(tmp_path))
    with LocalEngine() as engine:
        with pytest.raises(ParamValidationError, match="param x: 0 is less than the minimum of 1"):
            engine.run(model, source, RunRequest(conf={"x": 0}))
        assert engine.store.get_dag("checked") is None
        assert engine.sfn.list_state_machines()["stateMachines"] == []


def test_conf_overrides_params_and_adds_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path)
    result = run_cli("run", str(path), "--conf", '{"x": 7, "extra": "yes"}', "--json")
    assert result.exit_code == 0, result.output
    model, source = load_model(path)
    with LocalEngine() as engine:
        run = engine.run(model, source, RunRequest(conf={"x": 7, "extra": "yes"}))
        from airstep.runtime.store import RunKey

        (value,) = engine.store.get_xcoms(RunKey(run.dag_id, run.run_id), ["show"]).values()
    assert value == {"colour": "red", "day": "2024-01-01", "extra": "yes", "plain": 3, "x": 7}


def test_trigger_and_scheduled_starts_refuse_bad_params(tmp_path):
    import boto3

    with deployed_platform() as (engine, deployer, s3, scheduler):
        boto3.client("cloudformation").create_stack(
            StackName="airstep-dev",
            TemplateBody=json.dumps(
                {
                    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {"MetadataTableName": {"Value": "airstep-local"}},
                }
            ),
        )
        good = PARAMS_DAG.format(default="5, ", dag_id="good", schedule="@daily")
        bad = PARAMS_DAG.format(default='"5", ', dag_id="bad", schedule="@daily")
        assert deployer.handle(upload(s3, "dags/good.py", good)[1])[0]["outcome"] == "deployed"
        assert deployer.handle(upload(s3, "dags/bad.py", bad)[1])[0]["outcome"] == "deployed"
        stack = ["--stack", "airstep-dev", "--region", REGION]

        refused = run_cli("trigger", "good", *stack, "--conf", '{"x": -1}')
        assert refused.exit_code == 1
        assert "Invalid input for param x: -1 is less than the minimum of 1 (no run started)" in refused.output
        assert engine.store.runs_of_dag("good") == []
        started = run_cli("trigger", "good", *stack, "--conf", '{"x": 2}')
        assert started.exit_code == 0, started.output
        arn = started.output.split(": ", 1)[1].strip()
        while engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            time.sleep(0.02)

        # the bad DAG's defaults fail: its schedule still exists, and every start it makes is refused
        target = scheduler.get_schedule(Name="airstep-dev-bad", GroupName="airstep-dev")["Target"]
        event = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", "2026-11-21T00:00:00Z"))
        outcome = start_scheduled_run(event, engine.sfn)
        assert outcome["refused"] == "Invalid input for param x: '5' is not of type 'integer'"
        machine = engine.store.get_dag("bad").state_machine_arn
        assert engine.sfn.list_executions(stateMachineArn=machine)["executions"] == []
        target = scheduler.get_schedule(Name="airstep-dev-good", GroupName="airstep-dev")["Target"]
        assert "refusal" not in json.loads(target["Input"])


def test_airflows_params_tutorial_runs_unmodified(tmp_path, monkeypatch):
    """Airflow's example_params_ui_tutorial: dag.test() refuses it without conf ("Invalid input for
    param required_field: No value passed") and runs its one task to success with
    conf {"required_field": "long enough text"}; airstep does both."""
    monkeypatch.chdir(tmp_path)
    path = ROOT / "tests" / "fixtures" / "airflow_examples" / "example_params_ui_tutorial.py"
    refused = run_cli("run", str(path))
    assert refused.exit_code == 1
    assert "Invalid input for param required_field: No value passed (no run started)" in refused.output
    ran = run_cli("run", str(path), "--conf", '{"required_field": "long enough text"}', "--json")
    assert ran.exit_code == 0, ran.output
    assert [(t["task_id"], t["state"]) for t in json.loads(ran.stdout)["tasks"]] == [("show_params", "success")]
