"""The `airstep` command as a user runs it: exit codes, JSON schema, files written."""

import json
import subprocess
import sys
import tempfile
from datetime import datetime

from forked_cli import run_cli
from helpers import EXAMPLES, ROOT


def airstep(*args, cwd=None):
    """Run the command as its own process (forked_cli); by default in a scratch folder, so local
    history never lands in the checkout."""
    with tempfile.TemporaryDirectory() as scratch:
        return run_cli(*args, cwd=cwd or scratch)


def test_run_json_matches_schema():
    proc = airstep(
        "run", str(EXAMPLES / "flaky_retries.py"), "--json", "--fast-retries", "--logical-date", "2026-11-21T02:00:00Z"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"dag_id", "run_id", "state", "tasks"}
    assert data["state"] == "success" and data["run_id"] == "manual__2026-11-21T02:00:00+00:00"
    for task in data["tasks"]:
        assert set(task) == {"task_id", "map_index", "state", "try_number", "start", "end", "rendered_map_index"}
        assert task["map_index"] == -1 and task["state"] == "success"
        assert datetime.fromisoformat(task["start"]) <= datetime.fromisoformat(task["end"])
    assert {t["task_id"]: t["try_number"] for t in data["tasks"]} == {"flaky": 3, "report": 1}


def test_failed_run_exits_non_zero_and_names_the_task(tmp_path):
    dag = tmp_path / "fails.py"
    dag.write_text(
        "from airstep import DAG, task\n"
        "with DAG('fails'):\n"
        "    @task\n"
        "    def broken():\n"
        "        raise KeyError('customer_id')\n"
        "    broken()\n"
    )
    proc = airstep("run", str(dag))
    assert proc.returncode == 1
    assert "broken" in proc.stderr and "failed" in proc.stderr
    assert "KeyError: 'customer_id'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_run_rejects_bad_conf_without_traceback():
    proc = airstep("run", str(EXAMPLES / "etl_taskflow.py"), "--conf", "{not json")
    assert proc.returncode == 1 and "--conf: not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_compile_writes_one_file_per_dag(tmp_path):
    proc = airstep("compile", str(EXAMPLES / "fan_out_fan_in.py"), "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "fan_out_fan_in.asl.json"
    assert json.loads(written.read_text())["StartAt"] == "dagrun@start"
    assert "8 tasks" in proc.stdout and "bytes" in proc.stdout and "transitions/run" in proc.stdout


def test_graph_prints_mermaid():
    proc = airstep("graph", str(EXAMPLES / "etl_taskflow.py"))
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "flowchart LR"
    assert "t0 --> t1" in proc.stdout


def test_validate_examples_pass():
    proc = airstep("validate", str(EXAMPLES))
    assert proc.returncode == 0 and f"{len(list(EXAMPLES.glob('*.py')))} DAG(s): OK" in proc.stdout


def test_lambda_function_uses_the_engines_handler():
    import importlib.util

    from airstep.runtime.task_runner import lambda_handler

    spec = importlib.util.spec_from_file_location("run_task_app", ROOT / "functions" / "run_task" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.lambda_handler is lambda_handler


def test_local_runs_are_listed_and_shown(tmp_path):
    for _ in range(2):
        assert airstep("run", str(EXAMPLES / "etl_taskflow.py"), cwd=tmp_path).returncode == 0
    assert airstep("run", str(EXAMPLES / "fan_out_fan_in.py"), cwd=tmp_path).returncode == 0
    runs = json.loads(airstep("runs", "list", "etl_taskflow", "--json", cwd=tmp_path).stdout)
    assert len(runs) == 2 and runs[0]["start_date"] > runs[1]["start_date"]
    assert {r["state"] for r in runs} == {"success"}
    shown = json.loads(airstep("runs", "show", runs[0]["run_id"], "--json", cwd=tmp_path).stdout)
    assert [t["task_id"] for t in shown["tasks"]] == ["extract", "transform", "load"]
    assert airstep("runs", "list", "nope", cwd=tmp_path).returncode == 1
    dags = json.loads(airstep("dags", "list", "--json", cwd=tmp_path).stdout)["dags"]
    assert sorted(d["dag_id"] for d in dags) == ["etl_taskflow", "fan_out_fan_in"]
    table = airstep("dags", "list", cwd=tmp_path).stdout
    assert "@daily" in table and "cron_trigger" not in table  # schedules as the DAG file wrote them


def test_runs_without_local_history_say_so(tmp_path):
    proc = airstep("runs", "list", "etl_taskflow", cwd=tmp_path)
    assert proc.returncode == 1 and "no local runs here yet" in proc.stderr and "Traceback" not in proc.stderr


def test_commands_against_a_stack_do_not_load_the_local_engine():
    """`trigger`, `runs` and `dags` with --stack use the user's AWS: moto must not even be imported."""
    probe = (
        "import sys; from airstep_cli import main; from airstep_cli.options import run_options; "
        "run_options('2026-11-21T02:00:00Z', '{}'); "
        "print(','.join(m for m in ('moto', 'airstep_local') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
