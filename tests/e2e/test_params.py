"""Params validated as Airflow 3.3 validates them when it creates a run (create_dagrun ->
ParamsDict.validate): the DAG's params overridden by conf, each checked against its JSON schema in
order, the first invalid one refusing the run with "Invalid input for param <name>: <reason>".
Airflow's answers were read from its own dag.test() (the oracle) on these DAGs:
- default 5 for `type: string`      -> "Invalid input for param x: 5 is not of type 'string'"
- Param(type="integer"), no conf     -> "Invalid input for param x: No value passed" (no run)
- conf {"x": 0} for minimum 1        -> "Invalid input for param x: 0 is less than the minimum of 1"
- conf with a key that is no param   -> the task sees it in params
The same refusal holds for a manual run here and `airstep trigger`; a scheduled DAG must have
valid defaults to load at all."""

import dataclasses
import json
import time

import pytest
from typer.testing import CliRunner

from airstep.errors import ParamValidationError
from airstep_cli.main import app
from airstep_local.engine import REGION, LocalEngine, RunRequest
from deployed import cli_stack, deployed_platform, upload
from helpers import ROOT, load_model

PARAMS_DAG = """
import pendulum
from airflow.sdk import DAG, Param, task

with DAG(
    "{dag_id}",
    schedule={schedule},
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


def write(tmp_path, default="5, ", dag_id="checked", schedule="None"):
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


def test_trigger_refuses_a_bad_conf_and_a_scheduled_dag_needs_valid_defaults(tmp_path):
    """Airflow's DAG._validate_params: a DAG with a schedule whose defaults do not validate is not
    loaded ("Dag 'bad' is not allowed to define a Schedule, as there are required params without
    default values, or the default values are not valid.", read from Airflow 3.3.2's source)."""

    with deployed_platform() as (engine, deployer, s3, _):
        cli_stack()
        good = PARAMS_DAG.format(default="5, ", dag_id="good", schedule='"@daily"')
        bad = PARAMS_DAG.format(default='"5", ', dag_id="bad", schedule='"@daily"')
        assert deployer.handle(upload(s3, "dags/good.py", good)[1])[0]["outcome"] == "deployed"
        assert deployer.handle(upload(s3, "dags/bad.py", bad)[1])[0]["outcome"] == "import_error"
        (error,) = engine.store.list_import_errors()
        assert "Dag 'bad' is not allowed to define a Schedule" in error.errors[0]["message"]
        assert "Invalid input for param x: '5' is not of type 'integer'" in error.errors[0]["message"]
        stack = ["--stack", "airstep-dev", "--region", REGION]

        refused = run_cli("trigger", "good", *stack, "--conf", '{"x": -1}')
        assert refused.exit_code == 1
        assert "Invalid input for param x: -1 is less than the minimum of 1 (no run started)" in refused.output
        manual = [r for r in engine.store.runs_of_dag("good") if r.run_type == "manual"]
        assert manual == []  # (its deploy ran the latest scheduled run)
        when = ["--logical-date", "2026-02-01T01:00:00+01:00"]
        started = run_cli("trigger", "good", *stack, "--conf", '{"x": 2}', *when)
        assert started.exit_code == 0, started.output
        arn = started.output.split(": ", 1)[1].strip()
        while engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            time.sleep(0.02)
        # the same instant written in UTC is the same run (Airflow: one run per logical date)
        again = run_cli("trigger", "good", *stack, "--conf", '{"x": 3}', "--logical-date", "2026-02-01T00:00:00Z")
        assert again.exit_code == 1 and "already has a run at 2026-02-01T00:00:00+00:00" in again.output


def test_a_run_started_around_the_checks_fails_its_tasks_at_their_start(tmp_path):
    """Airflow validates params again when each task starts: a bad conf that reached a run (an
    execution started from the console) fails the task on its first try, retries or not."""
    path = write(tmp_path)
    path.write_text(path.read_text().replace("@task", "@task(retries=2)"))
    model, source = load_model(path)
    unchecked = dataclasses.replace(model, param_schemas=())  # as if started without airstep's check
    with LocalEngine() as engine:
        run = engine.run(unchecked, source, RunRequest(conf={"x": 0}, fast_retries=True))
    (show,) = run.tasks
    assert (run.state.value, str(show.state), show.try_number) == ("failed", "failed", 1)
    assert show.error == "Invalid input for param x: 0 is less than the minimum of 1"


def test_schemas_are_never_fetched_and_must_be_valid():
    from airstep.sdk.param import validated

    with pytest.raises(ParamValidationError, match="does not fetch schemas"):
        validated("a", {"$ref": "http://127.0.0.1:9/schema.json"})
    with pytest.raises(ParamValidationError, match="not valid JSON Schema: 'integr' is not valid"):
        validated(5, {"type": "integr"})
    assert validated(3, {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}) == 3


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
