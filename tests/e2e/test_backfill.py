"""`airstep backfill` as a user runs it: the runs Airflow's backfill plans, run here at most
--max-active-runs at once, a repeated backfill that redoes only what --reprocess-behavior asks, and
bad options refused by name."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest
from test_cli import airstep

from airstep.runtime.scheduling import backfill_runs
from airstep.runtime.store import RunKey
from airstep.sdk.schedule import parse_schedule
from helpers import load_model

DAILY = """
from datetime import datetime
from airflow.sdk import DAG, Param, task

fixed = Param(False, type="boolean")
with DAG("daily_sales", schedule="@daily", start_date=datetime(2026, 11, 1), params={"fixed": fixed}):
    @task
    def extract(ds=None, params=None):
        if ds == "2026-11-03" and not params["fixed"]:
            raise ValueError("the file of the 3rd is broken")
        return ds

    @task
    def load(day):
        print("loaded", day)

    load(extract())
"""
WINDOW = ["--from-date", "2026-11-01", "--to-date", "2026-11-04"]
DATES = [f"2026-11-0{day}T00:00:00+00:00" for day in (1, 2, 3, 4)]


@pytest.fixture
def daily(tmp_path):
    (tmp_path / "daily.py").write_text(DAILY)
    return tmp_path


def _states(proc):
    return {
        run["logical_date"]: (run["run_id"], run["state"], run.get("reason")) for run in json.loads(proc.stdout)["runs"]
    }


def test_a_dry_run_lists_the_planned_runs_and_starts_none(daily):
    proc = airstep("backfill", "daily.py", *WINDOW, "--dry-run", "--json", cwd=daily)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["dag_id"] == "daily_sales"
    assert [r["logical_date"] for r in data["runs"]] == DATES
    assert data["runs"][0] == {
        "run_id": "backfill__2026-11-01T00:00:00+00:00",
        "logical_date": "2026-11-01T00:00:00+00:00",
        "data_interval_start": "2026-11-01T00:00:00+00:00",
        "data_interval_end": "2026-11-01T00:00:00+00:00",
        "state": "queued",
    }
    assert not (daily / ".airstep").exists()  # nothing ran, nothing recorded
    backwards = airstep("backfill", "daily.py", *WINDOW, "--dry-run", "--json", "--run-backwards", cwd=daily)
    assert [r["logical_date"] for r in json.loads(backwards.stdout)["runs"]] == DATES[::-1]


def test_a_backfill_runs_its_window_and_a_repeat_redoes_only_what_is_asked(daily):
    first = airstep("backfill", "daily.py", *WINDOW, "--max-active-runs", "2", "--json", cwd=daily)
    assert first.returncode == 1, first.stderr  # one run failed
    assert _states(first) == {
        DATES[0]: (f"backfill__{DATES[0]}", "success", None),
        DATES[1]: (f"backfill__{DATES[1]}", "success", None),
        DATES[2]: (f"backfill__{DATES[2]}", "failed", None),
        DATES[3]: (f"backfill__{DATES[3]}", "success", None),
    }
    assert "4/4" in first.stderr and "(failed: extract)" in first.stderr
    (audited,) = json.loads(airstep("audit", "--json", cwd=daily).stdout)  # who ran it, with what, how it went
    assert (audited["action"], audited["dag_id"], audited["outcome"]) == (
        "backfill",
        "daily_sales",
        "1 failed, 3 success",
    )
    assert audited["arguments"]["max_active_runs"] == 2 and audited["principal"].startswith("local:")
    listed = json.loads(airstep("runs", "list", "daily_sales", "--json", cwd=daily).stdout)
    assert sorted((r["run_id"], r["run_type"]) for r in listed) == [(f"backfill__{d}", "backfill") for d in DATES]

    again = airstep("backfill", "daily.py", *WINDOW, "--json", cwd=daily)  # none: every date has its run
    assert again.returncode == 0, again.stderr
    assert {reason for _, _, reason in _states(again).values()} == {"already_exists"}
    assert "--reprocess-behavior failed runs it again" in again.stderr

    fixed = ["--reprocess-behavior", "failed", "--dag-run-conf", '{"fixed": true}', "--json"]
    redo = airstep("backfill", "daily.py", *WINDOW, *fixed, cwd=daily)
    assert redo.returncode == 0, redo.stderr
    states = _states(redo)
    assert states[DATES[2]] == (f"backfill__{DATES[2]}", "success", None)  # the same run, done again
    shown = json.loads(airstep("runs", "show", f"backfill__{DATES[2]}", "--json", cwd=daily).stdout)
    assert shown["clear_number"] == 1  # cleared: try numbers go on (load never ran before)
    assert {t["task_id"]: t["try_number"] for t in shown["tasks"]} == {"extract": 2, "load": 1}
    assert {states[d][2] for d in (DATES[0], DATES[1], DATES[3])} == {"already_exists"}
    assert "1/1" in redo.stderr

    everything = airstep("backfill", "daily.py", *WINDOW, "--reprocess-behavior", "completed", "--json", cwd=daily)
    assert [state for _, state, _ in _states(everything).values()] == ["success", "success", "failed", "success"]
    listed = json.loads(airstep("runs", "list", "daily_sales", "--json", cwd=daily).stdout)
    assert len(listed) == 4  # a run redone replaces its record: one run per logical date


def test_runs_beyond_max_active_runs_wait_for_a_slot(engine, dag_file):
    path = dag_file(
        """
        import time
        from datetime import datetime
        from airflow.sdk import DAG, task

        with DAG("slow_daily", schedule="@daily", start_date=datetime(2026, 11, 1)):
            @task
            def work():
                time.sleep(0.4)

            work()
        """
    )
    model, source = load_model(path)
    from airstep_local.engine import RunRequest

    now = datetime.now(UTC)
    runs = backfill_runs("slow_daily", parse_schedule("@daily", None), "UTC", now - timedelta(days=5), now, now)
    results = engine.run_many(model, source, RunRequest(), runs, max_active=2)
    assert [r.state for r in results] == ["success"] * 5
    spans = []
    for run in runs:
        record = engine.store.get_run(RunKey("slow_daily", run.run_id))
        spans.append((datetime.fromisoformat(record.start_date), datetime.fromisoformat(record.end_date)))
    overlapping = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert overlapping == 2  # two at once, never three


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-date", "2026-11-05", "--to-date", "2026-11-01"], "must not be after --to-date"),
        (["--from-date", "2999-01-01", "--to-date", "2999-01-05"], "both in the future"),
        (["--from-date", "yesterday", "--to-date", "2026-11-01"], "--from-date: 'yesterday' is not an ISO-8601"),
        ([*WINDOW, "--reprocess-behavior", "all"], "--reprocess-behavior: 'all' is not one of none, failed"),
        ([*WINDOW, "--dag-run-conf", "[1]"], "--dag-run-conf: must be a JSON object"),
        ([*WINDOW, "--dag-run-conf", '{"fixed": "yes"}'], "param fixed: 'yes' is not of type 'boolean'"),
        ([*WINDOW, "--max-active-runs", "0"], "--max-active-runs: must be at least 1"),
        (["--from-date", "2026-11-01T01:00", "--to-date", "2026-11-01T23:00"], "no runs to create"),
    ],
)
def test_bad_options_are_refused_by_name(daily, args, message):
    proc = airstep("backfill", "daily.py", *args, cwd=daily)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (daily / ".airstep").exists()


@pytest.mark.parametrize("schedule", ["None", '"@once"'])
def test_a_dag_without_a_periodic_schedule_has_nothing_to_backfill(tmp_path, schedule):
    (tmp_path / "dag.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        f"with DAG('once', schedule={schedule}, start_date=datetime(2026, 1, 1)):\n    EmptyOperator(task_id='t')\n"
    )
    proc = airstep("backfill", "dag.py", *WINDOW, cwd=tmp_path)
    assert proc.returncode == 1 and "is not periodic" in proc.stderr and "Traceback" not in proc.stderr


def test_an_interrupted_backfill_says_how_to_go_on_and_a_repeat_finishes_it(tmp_path):
    (tmp_path / "slow.py").write_text(
        textwrap.dedent(
            """
            import time
            from datetime import datetime
            from airflow.sdk import DAG, task

            with DAG("slow_daily", schedule="@daily", start_date=datetime(2026, 11, 1)):
                @task
                def work(ds=None):
                    time.sleep(0.3 if ds == "2026-11-01" else 30)

                work()
            """
        )
    )
    # Ctrl-C as a terminal sends it, though this process may have been started with SIGINT ignored (a
    # background job of a script), which a child inherits
    interruptible = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'airstep'; runpy.run_module('airstep_cli.main', run_name='__main__')"
    )
    command = [sys.executable, "-c", interruptible, "backfill", "slow.py", *WINDOW, "--max-active-runs", "1"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "1/4" in line:  # the first run ended; the second is running
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 1
    assert "backfill interrupted after 1 of 4 run(s)" in rest and "Traceback" not in rest
    listed = {
        r["run_id"]: r["state"]
        for r in json.loads(airstep("runs", "list", "slow_daily", "--json", cwd=tmp_path).stdout)
    }
    assert listed == {f"backfill__{DATES[0]}": "success", f"backfill__{DATES[1]}": "failed"}  # stopped, not lost
    plan = airstep(
        "backfill", "slow.py", *WINDOW, "--reprocess-behavior", "failed", "--dry-run", "--json", cwd=tmp_path
    )
    assert [r["logical_date"] for r in json.loads(plan.stdout)["runs"] if "reason" not in r] == DATES[1:]


STACK_DAG = """
from datetime import datetime
from airflow.sdk import DAG, task

with DAG("nightly", schedule="0 2 * * *", start_date=datetime(2030, 1, 1)):  # a backfill ignores it
    @task
    def load(ds=None):
        return ds

    load()
"""


def test_a_backfill_of_a_deployed_dag_queues_its_runs_behind_its_own_limit():
    """--stack: the same plan, queued in the stack with the user's credentials; its slots start the
    runs as earlier ones end (the run tracker), a repeat starts no duplicate, and one backfill at a time."""
    from typer.testing import CliRunner

    from airstep.runtime.run_tracker import execution_detail, status_event, track_and_count
    from airstep_cli.main import app
    from airstep_local.engine import REGION
    from deployed import cli_stack, deployed_platform, upload

    with deployed_platform() as (engine, deployer, s3, _):
        cli_stack()
        deployer.handle(upload(s3, "dags/nightly.py", STACK_DAG)[1])
        cli = CliRunner()
        stack = ["--stack", "airstep-dev", "--region", REGION, "--json"]
        window = ["--from-date", "2026-11-01", "--to-date", "2026-11-04T12:00"]
        dates = [f"2026-11-0{day}T02:00:00+00:00" for day in (1, 2, 3, 4)]

        plan = cli.invoke(app, ["backfill", "nightly", *window, *stack, "--dry-run"])
        assert plan.exit_code == 0, plan.output
        assert [r["logical_date"] for r in json.loads(plan.stdout)["runs"]] == dates
        assert engine.store.runs_of_dag("nightly") == []

        started = cli.invoke(app, ["backfill", "nightly", *window, *stack, "--max-active-runs", "2"])
        assert started.exit_code == 0, started.output
        states = {r["logical_date"]: r["state"] for r in json.loads(started.stdout)["runs"]}
        assert states == dict(zip(dates, ["running", "running", "queued", "queued"], strict=True))
        listed = {r.run_id: r.state for r in engine.store.runs_of_dag("nightly")}
        assert [listed[f"backfill__{d}"] for d in dates[2:]] == ["queued", "queued"]  # waiting for a slot
        assert {listed[f"backfill__{d}"] for d in dates[:2]} <= {"running", "success"}  # (they may be done)

        audited = json.loads(cli.invoke(app, ["audit", "--dag", "nightly", *stack]).stdout)[-1]
        assert (audited["action"], audited["outcome"]) == ("backfill", "2 queued, 2 running")
        assert audited["principal"] == "arn:aws:sts::123456789012:user/moto"
        assert audited["arguments"]["from_date"] == "2026-11-01T00:00:00+00:00"

        again = cli.invoke(app, ["backfill", "nightly", "--from-date", "2026-10-30", "--to-date", "2026-10-31", *stack])
        assert again.exit_code == 1 and "has a backfill still queued" in again.output

        def finish_started():
            """Each started run's end reaches the tracker (as EventBridge delivers it), which frees its slot."""
            for record in engine.store.runs_of_dag("nightly"):
                if record.execution_arn and record.exec_status in (None, "RUNNING"):
                    while engine.sfn.describe_execution(executionArn=record.execution_arn)["status"] == "RUNNING":
                        time.sleep(0.02)
                    description = engine.sfn.describe_execution(executionArn=record.execution_arn)
                    event = status_event(execution_detail(description))
                    track_and_count(event, engine.store, engine.sfn, engine.session.client("lambda"))

        for _ in range(3):  # two runs at a time: each pair's end starts the next pair
            finish_started()
        assert {r.state for r in engine.store.runs_of_dag("nightly")} == {"success"}
        assert len(engine.store.runs_of_dag("nightly")) == 4

        repeat = cli.invoke(app, ["backfill", "nightly", *window, *stack])
        assert repeat.exit_code == 0, repeat.output
        assert {r.get("reason") for r in json.loads(repeat.stdout)["runs"]} == {"already_exists"}
        redo_options = ["--reprocess-behavior", "completed", "--max-active-runs", "2"]
        redo = cli.invoke(app, ["backfill", "nightly", *window, *stack, *redo_options])
        assert redo.exit_code == 0, redo.output  # as Airflow: each run is cleared and runs again
        assert [r["state"] for r in json.loads(redo.stdout)["runs"]] == ["running", "running", "queued", "queued"]
        for _ in range(3):
            finish_started()
        runs = engine.store.runs_of_dag("nightly")
        assert {(r.state, r.clear_number, r.run_type) for r in runs} == {("success", 1, "backfill")}
        machine = engine.store.get_dag("nightly").state_machine_arn
        assert len(engine.sfn.list_executions(stateMachineArn=machine)["executions"]) == 8  # one more each
        tries = {ti.try_number for r in runs for ti in engine.store.task_instances(RunKey("nightly", r.run_id))}
        assert tries == {2}  # try numbers go on
