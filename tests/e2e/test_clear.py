"""`airstep runs clear` and `airstep runs mark` as a user runs them on local runs: the cleared tasks run
again in a new execution of the same run (try numbers go on, retries count afresh), the tasks kept
keep their state and results, and a mark sets a task and runs again what failed downstream of it."""

import getpass
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_cli import airstep

PIPELINE = """
from datetime import datetime
from pathlib import Path
from airflow.sdk import DAG, task

FIXED = Path(__file__).with_name("fixed")

with DAG("pipeline", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def extract():
        return [1, 2, 3]

    @task(retries=2)
    def transform(rows):
        if not FIXED.exists():
            raise ValueError("the transform has a bug")
        return sum(rows)

    @task
    def load(total):
        return f"loaded {total}"

    @task
    def audit():
        return "audited"

    load(transform(extract()))
    audit()
"""


def run_json(proc):
    data = json.loads(proc.stdout)
    return data, {t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]": t for t in data["tasks"]}


@pytest.fixture
def failed_run(tmp_path):
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    first = airstep("run", "pipeline.py", "--fast-retries", "--json", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    data, tasks = run_json(first)
    assert {t: v["state"] for t, v in tasks.items()} == {
        "extract": "success",
        "transform": "failed",
        "load": "upstream_failed",
        "audit": "success",
    }
    return tmp_path, data["run_id"], tasks


def test_clearing_a_failed_task_and_its_downstream_runs_them_again_and_keeps_the_rest(failed_run):
    folder, run_id, before = failed_run
    dry = airstep("runs", "clear", run_id, "--task", "transform", "--downstream", "--dry-run", cwd=folder)
    assert dry.returncode == 0, dry.stderr
    assert "would clear 2 task(s)" in dry.stdout and "transform, load" in dry.stdout
    (folder / "fixed").touch()  # the bug fix: a clear runs the DAG file as it is now
    proc = airstep("runs", "clear", run_id, "--task", "transform", "--downstream", "--json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    data, after = run_json(proc)
    assert (data["run_id"], data["state"], data["clear_number"]) == (run_id, "success", 1)
    assert data["cleared"] == ["transform", "load"]
    assert after["transform"]["try_number"] == 4  # tries 1-3 failed before the clear: the count goes on
    assert after["load"]["try_number"] == 1
    for kept in ("extract", "audit"):  # not run again: the same try, the same times
        assert {k: after[kept][k] for k in ("state", "try_number", "start", "end")} == {
            k: before[kept][k] for k in ("state", "try_number", "start", "end")
        }
    shown = json.loads(airstep("runs", "show", run_id, "--json", cwd=folder).stdout)
    assert shown["state"] == "success" and shown["clear_number"] == 1
    assert len(json.loads(airstep("runs", "list", "pipeline", "--json", cwd=folder).stdout)) == 1  # the same run
    # the audit trail: the run and the clear, by the local user (the dry run changed nothing: no record)
    trail = json.loads(airstep("audit", "--dag", "pipeline", "--json", cwd=folder).stdout)
    assert [(r["action"], r["run_id"], r["principal"], r["via"]) for r in trail] == [
        ("trigger", run_id, f"local:{getpass.getuser()}", "cli"),
        ("clear", run_id, f"local:{getpass.getuser()}", "cli"),
    ]
    assert trail[0]["outcome"] == "failed" and trail[0]["arguments"]["file"] == "pipeline.py"
    asked = {"tasks": ["transform"], "upstream": False, "downstream": True, "only_failed": False}
    assert trail[1]["arguments"] == asked
    assert trail[1]["outcome"] == "cleared transform, load"


def test_a_cleared_task_gets_its_retries_again(failed_run):
    folder, run_id, _ = failed_run
    proc = airstep("runs", "clear", run_id, "--only-failed", "--fast-retries", "--json", cwd=folder)  # still buggy
    assert proc.returncode == 1
    data, after = run_json(proc)
    assert data["cleared"] == ["transform", "load"]  # failed and upstream_failed
    assert (after["transform"]["state"], after["transform"]["try_number"]) == ("failed", 6)  # 4, then 2 retries
    assert after["load"]["state"] == "upstream_failed"


def test_the_tasks_kept_hand_their_results_to_the_tasks_cleared(failed_run):
    folder, run_id, _ = failed_run
    (folder / "fixed").touch()
    airstep("runs", "clear", run_id, "--only-failed", cwd=folder)
    proc = airstep("runs", "clear", run_id, "--task", "load", "--json", cwd=folder)
    data, after = run_json(proc)
    assert data["clear_number"] == 2 and after["load"]["try_number"] == 2
    xcoms = folder / "xcoms.py"
    xcoms.write_text(
        textwrap.dedent(
            f"""
            from airstep_local.engine import LocalEngine
            from airstep_cli.metadata import LOCAL_STATE
            from airstep.runtime.store import RunKey
            with LocalEngine(state_file=LOCAL_STATE, load_state=True) as engine:
                found = engine.store.get_task_instances(RunKey("pipeline", {run_id!r}), ["transform", "load"])
                print(found["transform"].xcom(), found["load"].xcom())
            """
        )
    )
    read = subprocess.run([sys.executable, str(xcoms)], capture_output=True, text=True, cwd=folder, check=True)
    assert read.stdout.split() == ["6", "loaded", "6"]  # load pulled the kept transform's value


def test_marking_a_failed_task_success_runs_what_failed_downstream_of_it(failed_run):
    folder, run_id, _ = failed_run
    proc = airstep("runs", "mark", run_id, "--task", "transform", "success", "--json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    data, after = run_json(proc)
    assert data["cleared"] == ["load"] and data["state"] == "success"
    assert (after["transform"]["state"], after["transform"]["try_number"]) == ("success", 3)  # set, not run
    assert after["load"]["state"] == "success"

    marked = airstep("runs", "mark", run_id, "--task", "audit", "failed", cwd=folder)
    assert marked.returncode == 0, marked.stderr
    assert "nothing to run again: the run stays success" in marked.stdout  # as Airflow: the run is not re-decided
    shown = json.loads(airstep("runs", "show", run_id, "--json", cwd=folder).stdout)
    assert {t["task_id"]: t["state"] for t in shown["tasks"]}["audit"] == "failed"
    listed = airstep("audit", "--since", "1h", cwd=folder)  # a line per record: each mark, with what it set
    assert listed.returncode == 0, listed.stderr
    marks = [line for line in listed.stdout.splitlines() if " mark " in line]
    assert len(marks) == 2 and "marked transform success, cleared load" in marks[0], listed.stdout
    assert "state=failed, task=audit" in marks[1] and f"local:{getpass.getuser()}" in marks[1], listed.stdout
    assert "no audit records for DAG other" in airstep("audit", "--dag", "other", cwd=folder).stdout
    bad = airstep("audit", "--since", "yesterday", cwd=folder)
    assert bad.returncode == 1 and "--since: 'yesterday' is neither" in bad.stderr and "Traceback" not in bad.stderr


def test_a_clear_that_could_not_run_changes_nothing(failed_run):
    folder, run_id, _ = failed_run
    source = (folder / "pipeline.py").read_text()
    (folder / "pipeline.py").write_text(
        source.replace(
            "start_date=datetime(2026, 1, 1))", 'start_date=datetime(2026, 1, 1), params={"day": Param(type="string")})'
        ).replace("from airflow.sdk import DAG, task", "from airflow.sdk import DAG, Param, task")
    )
    refused = airstep("runs", "clear", run_id, "--only-failed", cwd=folder)
    assert refused.returncode == 1 and "param day" in refused.stderr and "(nothing cleared)" in refused.stderr
    assert "Traceback" not in refused.stderr
    shown = json.loads(airstep("runs", "show", run_id, "--json", cwd=folder).stdout)
    assert (shown["state"], shown["clear_number"]) == ("failed", 0)
    assert {t["task_id"]: t["state"] for t in shown["tasks"]}["transform"] == "failed"


def test_clear_and_mark_refuse_what_they_cannot_do_by_name(failed_run):
    folder, run_id, _ = failed_run
    unknown = airstep("runs", "clear", run_id, "--task", "nope", cwd=folder)
    assert unknown.returncode == 1 and "DAG 'pipeline' has no task 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad_state = airstep("runs", "mark", run_id, "--task", "load", "skipped", cwd=folder)
    assert bad_state.returncode == 1 and "must be success or failed, not 'skipped'" in bad_state.stderr
    missing = airstep("runs", "clear", "manual__nope", cwd=folder)
    assert missing.returncode == 1 and "run 'manual__nope': not found" in missing.stderr
    (folder / "pipeline.py").unlink()
    gone = airstep("runs", "clear", run_id, cwd=folder)
    assert gone.returncode == 1 and "pipeline.py: no such file" in gone.stderr
    shown = json.loads(airstep("runs", "show", run_id, "--json", cwd=folder).stdout)
    assert shown["state"] == "failed" and shown["clear_number"] == 0  # nothing half-done


MAPPED = """
from datetime import datetime
from pathlib import Path
from airflow.sdk import DAG, task

FIXED = Path(__file__).with_name("fixed")

with DAG("mapped", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def files():
        return ["a", "b", "c", "d"] if FIXED.exists() else ["a", "b", "c"]

    @task
    def size(name):
        if name == "b" and not FIXED.exists():
            raise ValueError("b is corrupt")
        return len(name)

    @task
    def total(sizes):
        return sum(sizes)

    total(size.expand(name=files()))
"""


def test_only_failed_clears_the_failed_map_indexes_and_keeps_the_expansion(tmp_path):
    (tmp_path / "mapped.py").write_text(MAPPED)
    first = airstep("run", "mapped.py", "--json", cwd=tmp_path)
    run_id = json.loads(first.stdout)["run_id"]
    (tmp_path / "fixed").touch()  # files() would now list four: kept, it is not asked again
    proc = airstep("runs", "clear", run_id, "--only-failed", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data, after = run_json(proc)
    assert data["cleared"] == ["size", "total"]
    assert [after[f"size[{i}]"]["try_number"] for i in range(3)] == [1, 2, 1]  # only b's instance ran again
    assert "size[3]" not in after and after["files"]["try_number"] == 1


def test_a_cleared_mapped_task_expands_again(tmp_path):
    (tmp_path / "mapped.py").write_text(MAPPED)
    first = airstep("run", "mapped.py", "--json", cwd=tmp_path)
    assert first.returncode == 1
    run_id = json.loads(first.stdout)["run_id"]
    (tmp_path / "fixed").touch()
    proc = airstep("runs", "clear", run_id, "--json", cwd=tmp_path)  # every task: files() now lists four
    assert proc.returncode == 0, proc.stderr
    data, after = run_json(proc)
    assert [after[f"size[{i}]"]["try_number"] for i in range(4)] == [2, 2, 2, 1]
    assert after["total"]["state"] == "success" and after["files"]["try_number"] == 2


def test_a_run_whose_dag_needs_gates_runs_again_through_new_gates(tmp_path):
    dag = (
        (Path(__file__).parents[2] / "examples" / "dags" / "non_series_parallel.py")
        .read_text()
        .replace("op_args=[1.0]", "op_args=[0.01]")
        .replace('task_id="b", python_callable=work, op_args=[0.1]', 'task_id="b", python_callable=fail_once')
    )
    dag = dag.replace(
        "def work(seconds: float) -> float:",
        "def fail_once(dag_run=None):\n    if not dag_run.clear_number:\n"
        "        raise ValueError('first attempt')\n\n\ndef work(seconds: float) -> float:",
    )
    (tmp_path / "nsp.py").write_text(dag)
    first = airstep("run", "nsp.py", "--json", cwd=tmp_path)
    _, before = run_json(first)
    assert before["b"]["state"] == "failed" and before["a"]["state"] == "success"
    assert {before[t]["state"] for t in ("c", "d", "g_2_2")} == {"upstream_failed"}
    run_id = json.loads(first.stdout)["run_id"]
    proc = airstep("runs", "clear", run_id, "--only-failed", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data, after = run_json(proc)
    assert len(data["cleared"]) == 12 and "a" not in data["cleared"]  # b and everything after it
    assert after["b"]["try_number"] == 2 and after["a"]["try_number"] == 1
    assert all(ti["state"] == "success" for ti in after.values())
    order = sorted(after.values(), key=lambda ti: ti["start"])  # each ran after its upstreams ended
    assert [ti["task_id"] for ti in order].index("g_0_0") > [ti["task_id"] for ti in order].index("d")
    assert after["g_0_0"]["start"] >= after["d"]["end"] and after["c"]["start"] >= after["b"]["end"]


# -- in a deployed environment (its parts on moto) ------------------------------------------------

STACK = ["--stack", "airstep-dev", "--region", "us-east-1"]


@pytest.fixture
def platform():
    from deployed import cli_stack, deployed_platform

    with deployed_platform() as parts:
        cli_stack()
        yield parts


def settle(engine, run_id):
    """Wait for the run's executions to end and tell the tracker (moto sends no status events)."""
    from airstep.runtime.run_tracker import execution_detail, status_event, track_and_count
    from deployed import quiesce

    quiesce(engine)
    record = next(r for r in engine.store.find_runs(run_id))
    description = engine.sfn.describe_execution(executionArn=record.execution_arn)
    event = status_event(execution_detail(description))
    track_and_count(event, engine.store, engine.sfn, engine.session.client("lambda"))
    return event


def test_a_clear_in_a_stack_runs_the_run_again_in_a_new_execution_through_new_gates(platform):
    from typer.testing import CliRunner

    from airstep.runtime.run_tracker import track
    from airstep.runtime.store import RunKey
    from airstep_cli.main import app
    from deployed import UPLOADER, upload

    engine, deployer, s3, _ = platform
    source = (Path(__file__).parents[2] / "examples" / "dags" / "non_series_parallel.py").read_text()
    source = source.replace("op_args=[1.0]", "op_args=[0.01]").replace(
        'task_id="b", python_callable=work, op_args=[0.1]', 'task_id="b", python_callable=fail_once'
    )
    source = source.replace(
        "def work(",
        "def fail_once(dag_run=None):\n    if not dag_run.clear_number:\n        raise ValueError\n\n\ndef work(",
    )
    (outcome,) = deployer.handle(upload(s3, "dags/nsp.py", source)[1])
    assert outcome["outcome"] == "deployed", outcome
    cli = CliRunner()
    started = cli.invoke(app, ["trigger", "non_series_parallel", *STACK])
    assert started.exit_code == 0, started.output
    run_id = started.output.split()[1].rstrip(":")
    first_end = settle(engine, run_id)
    key = RunKey("non_series_parallel", run_id)
    assert engine.store.get_run(key).state == "failed"

    assert cli.invoke(app, ["dags", "pause", "non_series_parallel", *STACK]).exit_code == 0
    paused = cli.invoke(app, ["runs", "clear", run_id, "--only-failed", *STACK])
    assert paused.exit_code == 1 and "is paused" in paused.output
    assert engine.store.get_run(key).clear_number == 0  # nothing cleared
    assert cli.invoke(app, ["dags", "unpause", "non_series_parallel", *STACK]).exit_code == 0
    cleared = cli.invoke(app, ["runs", "clear", run_id, "--only-failed", *STACK])
    assert cleared.exit_code == 0, cleared.output
    assert "cleared 12 task(s)" in cleared.output and "(clear 1)" in cleared.output
    settle(engine, run_id)
    record = engine.store.get_run(key)
    assert (record.state, record.clear_number) == ("success", 1)
    assert record.execution_arn.endswith("__clear1")
    tasks = {ti.task_id: ti for ti in engine.store.task_instances(key)}
    assert all(ti.state == "success" for ti in tasks.values())
    assert (tasks["a"].try_number, tasks["b"].try_number) == (1, 2)
    for task in platform_model(engine).tasks:  # every gate waited for this execution's upstreams
        assert all(tasks[task.task_id].start >= tasks[u].end for u in task.upstream), task.task_id

    assert not track(first_end, engine.store)["tracked"]  # a late event of the first execution changes nothing
    assert engine.store.get_run(key).state == "success"
    again = cli.invoke(app, ["runs", "mark", run_id, "--task", "g_2_2", "failed", *STACK])
    assert again.exit_code == 0 and "nothing to run again" in again.output

    # every change left its audit record in the stack's audit log group, naming who made it
    listed = cli.invoke(app, ["audit", "--dag", "non_series_parallel", "--json", *STACK])
    assert listed.exit_code == 0, listed.output
    trail = [(r["action"], r["principal"], r.get("run_id"), r.get("outcome")) for r in json.loads(listed.stdout)]
    caller = "arn:aws:sts::123456789012:user/moto"  # moto's caller identity
    assert trail[4][3].startswith("cleared b, c, d, g_0_0") and len(trail[4][3].split(", ")) == 12
    assert trail[:4] + [trail[4][:3]] + trail[5:] == [
        ("upload", UPLOADER, None, "deployed"),
        ("trigger", caller, run_id, "running"),
        ("pause", caller, None, "paused"),
        ("unpause", caller, None, "unpaused"),
        ("clear", caller, run_id),
        ("mark", caller, run_id, "marked g_2_2 failed"),
    ]


def platform_model(engine):
    from airstep.model import DagModel
    from airstep.runtime.dag_cache import read_s3

    return DagModel.from_json(read_s3(engine.store.get_dag("non_series_parallel").model).decode())
