"""`airstep logs`: each try's log, kept beside the local run records, printed by run, task and try."""

from __future__ import annotations

import json

from test_cli import airstep

LOGGED = """
import logging
from datetime import datetime
from airflow.sdk import DAG, task
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator

log = logging.getLogger("airflow.task")


def announced(context):
    print(f"announced in try {context['ti'].try_number}")

with DAG("logged", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def extract():
        print("extracting 3 rows")
        log.info("connected to %s", "db")
        return 3

    @task(retries=1)
    def load(rows, ti=None):
        print(f"try {ti.try_number}: loading {rows} rows")
        raise RuntimeError("the warehouse is read-only")

    @task
    def fan(n):
        print(f"instance for {n}")

    rows = extract()
    load(rows) >> BashOperator(task_id="notify", bash_command="echo notified", trigger_rule="all_done")
    fan.expand(n=[1, 2])
    SnsPublishOperator(task_id="announce", target_arn="arn:aws:sns:us-east-1:123456789012:news", message="hi",
                       on_success_callback=announced)  # (the runner decides its outcome: its callback too)
"""


def test_each_try_has_its_own_log(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from airstep_cli.main import app

    (tmp_path / "logged.py").write_text(LOGGED)
    ran = airstep("run", "logged.py", "--fast-retries", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr  # its leaves succeeded (notify runs all_done), as in Airflow
    run_id = json.loads(ran.stdout)["run_id"]
    monkeypatch.chdir(tmp_path)

    def logs(*args):
        return CliRunner().invoke(app, ["logs", run_id, *args])

    extract = logs("extract")
    assert extract.exit_code == 0, extract.output
    assert extract.stdout.splitlines()[0] == "extracting 3 rows"
    assert extract.stdout.splitlines()[1].endswith("INFO - connected to db")

    latest = logs("load").stdout
    assert latest.startswith("try 2: loading 3 rows\nTask failed with exception\nTraceback")
    assert 'logged.py", line 24, in load' in latest and latest.endswith("RuntimeError: the warehouse is read-only\n")
    assert logs("load", "--try", "1").stdout.startswith("try 1: loading 3 rows")
    assert logs("notify").stdout == "[notify] notified\n"
    assert logs("fan", "--map-index", "1").stdout == "instance for 2\n"
    assert logs("announce").stdout == "announced in try 1\n"

    beyond = logs("load", "--try", "3")
    assert beyond.exit_code == 1 and "try 3: load has had tries 1 to 2" in beyond.output
    unknown = logs("nope")
    assert (
        unknown.exit_code == 1
        and "has no try of 'nope' (its tasks: announce, extract, fan, load, notify)" in unknown.output
    )
    assert "Traceback" not in beyond.output + unknown.output
