"""Tasks read connections and variables from moto's Secrets Manager, seeded by `--secrets`."""

import json

from airstep.runtime.store import RunKey
from forked_cli import run_cli
from helpers import KeepMachines, executions

DAG = """
from airstep import DAG, task, Connection, Variable, BaseHook

with DAG("uses_secrets"):
    @task
    def read():
        db = Connection.get("warehouse")
        api = BaseHook.get_connection("api")
        return {
            "db": [db.conn_type, db.host, db.port, db.schema, db.login],
            "api_host": api.host,
            "batch": Variable.get("config", deserialize_json=True)["batch"],
            "env": Variable.get("env"),
            "missing": Variable.get("absent", default_var="fallback"),
        }

    read()
"""

SECRETS = {
    "connections": {
        "warehouse": "postgresql://etl:s3cr3t-pw@warehouse.internal:5439/analytics",
        "api": {"conn_type": "http", "host": "api.example.com", "password": "s3cr3t-token"},
    },
    "variables": {"config": {"batch": 500}, "env": "staging"},
}


def test_tasks_read_seeded_secrets(dag_file, engine, run_file):
    path = dag_file(DAG)
    engine.seed_secrets(SECRETS["connections"], SECRETS["variables"])
    result = run_file(path)
    assert result.state == "success", result.tasks
    value = engine.store.get_xcoms(RunKey(result.dag_id, result.run_id), ["read"])["read"]
    assert value == {
        "db": ["postgres", "warehouse.internal", 5439, "analytics", "etl"],
        "api_host": "api.example.com",
        "batch": 500,
        "env": "staging",
        "missing": "fallback",
    }


def test_cli_secrets_file_and_no_secret_in_output(dag_file, tmp_path):
    path = dag_file(DAG)
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps(SECRETS))
    proc = run_cli("run", path, "--secrets", secrets, "--json", "-v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "s3cr3t" not in proc.stdout + proc.stderr
    assert "s3cr3t" not in (tmp_path / ".airstep" / "local-metadata.json").read_text()  # nor in run records


def test_cli_rejects_a_broken_secrets_file(dag_file, tmp_path):
    path = dag_file(DAG)
    secrets = tmp_path / "secrets.json"
    secrets.write_text('{\n  "connections": {"db": "postgres://u:pw@h/d",}\n}')
    proc = run_cli("run", path, "--secrets", secrets, cwd=tmp_path)
    assert proc.returncode == 1
    assert f"{secrets}:2: not valid JSON" in proc.stderr and "pw@" not in proc.stderr and "Traceback" not in proc.stderr


LEAKY = """
from airstep import DAG, task, BashOperator, Connection, Variable

with DAG("leaky"):
    @task(retries=1, retry_delay=1)
    def careless():
        db = Connection.get("warehouse")
        key = Variable.get("api_key")
        print(f"connecting with {db.password} and {key}")
        raise RuntimeError(f"login failed for etl:{db.password} (key {key})")

    @task(trigger_rule="all_done")
    def after():
        return "ok"

    shout = BashOperator(task_id="shout", bash_command="echo $PW; exit 3", env={"PW": "s3cr3t-pw"})
    careless() >> after() >> shout
"""


def test_a_secret_a_task_read_is_masked_in_records_history_and_logs(dag_file, engine, run_file, capfd, monkeypatch):
    path = dag_file(LEAKY)
    monkeypatch.setattr(engine, "sfn", KeepMachines(engine.sfn))  # to read the execution's history after
    engine.seed_secrets({"warehouse": SECRETS["connections"]["warehouse"]}, {"api_key": "k-123456789"})
    result = run_file(path, fast_retries=True)
    tasks = {t.task_id: t for t in result.tasks}
    assert (tasks["careless"].state, tasks["careless"].try_number) == ("failed", 2)
    assert tasks["careless"].error == "RuntimeError: login failed for etl:*** (key ***)"
    assert tasks["shout"].state == "failed"

    key = RunKey(result.dag_id, result.run_id)
    records = json.dumps([item for page in engine.store.table.scan() for item in page])
    execution = executions(engine.sfn, "leaky")[0]
    history = json.dumps(engine.sfn.get_execution_history(executionArn=execution["executionArn"]), default=str)
    output = "".join(capfd.readouterr())
    assert engine.store.get_run(key).state == "failed"
    for where, text in (("records", records), ("history", history), ("task output and logs", output)):
        assert "s3cr3t-pw" not in text and "k-123456789" not in text, where
    assert "connecting with *** and ***" in output and "[shout] ***" in output
    assert "RuntimeError (the message is in its task instance record)" in history
