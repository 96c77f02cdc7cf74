"""Catchup and pausing in a deployed environment (its parts on moto): a first deploy starts the runs
a DAG missed since its start_date (all with catchup, else the latest), within max_active_runs; a DAG
deployed paused starts nothing until unpaused; unpausing catches up what the pause missed."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from airstep.runtime.catchup import MAX_CATCHUP_RUNS, missed_runs
from airstep.sdk.schedule import parse_schedule
from airstep_cli.main import app
from airstep_local.engine import REGION
from deployed import cli_stack, deployed_platform, quiesce, upload

STACK = ["--stack", "airstep-dev", "--region", REGION]


def dag_source(dag_id, start, **settings):
    extra = "".join(f", {name}={value!r}" for name, value in settings.items())
    return f"""
from datetime import datetime
from airflow.sdk import DAG, task

with DAG({dag_id!r}, schedule="@daily", start_date=datetime.fromisoformat({start.isoformat()!r}){extra}):
    @task
    def work(ds=None):
        return ds

    work()
"""


@pytest.fixture
def platform():
    with deployed_platform() as parts:
        cli_stack()
        yield parts


def midnight(days_ago):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def deploy(platform, name, source):
    engine, deployer, s3, _ = platform
    (outcome,) = deployer.handle(upload(s3, f"dags/{name}.py", source)[1])
    assert outcome["outcome"] == "deployed", outcome
    return outcome["dags"][0]


def test_a_first_deploy_with_catchup_starts_every_missed_run_oldest_first_within_the_limit(platform):
    engine = platform[0]
    deployed = deploy(platform, "caught", dag_source("caught", midnight(3), catchup=True, max_active_runs=2))
    days = [midnight(n).isoformat() for n in (3, 2, 1, 0)]
    assert deployed["caught_up"] == [f"scheduled__{day}" for day in days]
    states = {r.run_id: r.state for r in engine.store.runs_of_dag("caught")}
    assert [states[f"scheduled__{day}"] for day in days[2:]] == ["queued", "queued"]  # two at a time
    assert all(states[f"scheduled__{day}"] in ("running", "success") for day in days[:2])


def test_a_first_deploy_without_catchup_starts_only_the_latest_run(platform):
    engine = platform[0]
    deployed = deploy(platform, "latest", dag_source("latest", midnight(3)))
    assert deployed["caught_up"] == [f"scheduled__{midnight(0).isoformat()}"]
    quiesce(engine)
    again = deploy(platform, "latest", dag_source("latest", midnight(3)) + "# a new version\n")
    assert "caught_up" not in again  # a redeploy catches nothing up: the schedule never stopped
    assert len(engine.store.runs_of_dag("latest")) == 1


def test_a_dag_deployed_paused_starts_nothing_until_unpaused(platform, monkeypatch):
    engine, _, _, scheduler = platform
    deployed = deploy(platform, "held", dag_source("held", midnight(2), is_paused_upon_creation=True))
    assert "caught_up" not in deployed and engine.store.runs_of_dag("held") == []
    assert engine.store.get_dag("held").paused
    assert scheduler.get_schedule(Name="airstep-dev-held", GroupName="airstep-dev")["State"] == "DISABLED"

    cli = CliRunner()
    refused = cli.invoke(app, ["trigger", "held", *STACK])
    assert refused.exit_code == 1 and "is paused" in refused.output
    unpaused = cli.invoke(app, ["dags", "unpause", "held", *STACK])
    assert unpaused.exit_code == 0, unpaused.output
    assert f"scheduled__{midnight(0).isoformat()} (missed while paused)" in unpaused.output  # no catchup: latest
    assert scheduler.get_schedule(Name="airstep-dev-held", GroupName="airstep-dev")["State"] == "ENABLED"
    assert not engine.store.get_dag("held").paused


def test_pausing_disables_the_schedule_and_unpausing_catches_up(platform):
    """A DAG deployed paused with catchup starts, once unpaused, every run since its start_date;
    pausing it again disables its schedule and keeps the rest of it."""
    engine, _, _, scheduler = platform
    source = dag_source("paused", midnight(2), catchup=True, is_paused_upon_creation=True)
    assert "caught_up" not in deploy(platform, "paused", source)
    cli = CliRunner()
    unpaused = cli.invoke(app, ["dags", "unpause", "paused", *STACK])
    assert unpaused.exit_code == 0, unpaused.output
    missed = [f"scheduled__{midnight(n).isoformat()}" for n in (2, 1, 0)]
    assert [line.split()[1] for line in unpaused.output.splitlines()[1:]] == missed
    assert scheduler.get_schedule(Name="airstep-dev-paused", GroupName="airstep-dev")["State"] == "ENABLED"

    assert cli.invoke(app, ["dags", "pause", "paused", *STACK]).exit_code == 0
    assert "already paused" in cli.invoke(app, ["dags", "pause", "paused", *STACK]).output
    schedule = scheduler.get_schedule(Name="airstep-dev-paused", GroupName="airstep-dev")
    assert schedule["State"] == "DISABLED"
    assert json.loads(schedule["Target"]["Input"])["dag_id"] == "paused"  # the rest of it is kept
    assert engine.store.get_dag("paused").paused_at is not None


@pytest.mark.parametrize(
    ("schedule", "logical_dates"),
    [
        # a daily interval timetable: the run for the 1st fires at the 2nd's midnight, while paused
        ("CronDataIntervalTimetable('0 0 * * *', timezone='UTC')", ["01-01", "01-02", "01-03"]),
        ("timedelta(days=1)", ["01-02", "01-03", "01-04"]),  # on the start_date's grid, not the pause's
        ("'@daily'", ["01-02", "01-03", "01-04"]),
    ],
)
def test_unpausing_starts_the_runs_the_schedule_would_have_fired_while_paused(schedule, logical_dates):
    from airstep.timetables import CronDataIntervalTimetable

    parsed = parse_schedule(
        eval(schedule, {"timedelta": timedelta, "CronDataIntervalTimetable": CronDataIntervalTimetable}), None
    )  # noqa: S307
    start = datetime(2025, 12, 1, tzinfo=UTC)
    paused, unpaused = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 4, 10, tzinfo=UTC)
    runs = missed_runs("d", parsed, "UTC", start, unpaused, catchup=True, after=paused)
    assert [run.logical_date.strftime("%m-%d") for run in runs] == logical_dates
    latest = missed_runs("d", parsed, "UTC", start, unpaused, catchup=False, after=paused)
    assert latest == runs[-1:]
    assert missed_runs("d", parsed, "UTC", start, paused + timedelta(hours=1), catchup=False, after=paused) == []


def test_missed_runs_are_bounded_by_end_date_and_capped():
    schedule = parse_schedule("@hourly", None)
    now = datetime(2026, 11, 10, 12, 30, tzinfo=UTC)
    since = now - timedelta(days=2)
    every = missed_runs("d", schedule, "UTC", since, now, catchup=True)
    assert len(every) == 48 and every[0].logical_date == since.replace(minute=0) + timedelta(hours=1)
    ended = missed_runs("d", schedule, "UTC", since, now, catchup=True, end_date=now - timedelta(days=1))
    assert ended[-1].logical_date == now.replace(minute=0) - timedelta(days=1)
    assert missed_runs("d", schedule, "UTC", since, now, catchup=False) == [every[-1]]
    assert missed_runs("d", schedule, "UTC", since, now, catchup=False, end_date=since) == []
    years = missed_runs("d", schedule, "UTC", now - timedelta(days=400), now, catchup=True)
    assert len(years) == MAX_CATCHUP_RUNS + 1  # the catch-up queues the first MAX and says so


TIMED = """
import time
from datetime import timedelta
from pathlib import Path
from airflow.sdk import DAG, task

def on_failure(context):
    Path({log!r}).write_text(f"{{context['reason']}} {{context['ti'].task_id}}")

with DAG("slow_run", dagrun_timeout=timedelta(seconds={timeout}), on_failure_callback=on_failure):
    @task
    def quick():
        return 1

    @task
    def slow(x):
        time.sleep(2.5)
        return "late"

    @task
    def after():
        pass

    slow(quick()) >> after()
"""


def test_a_run_past_its_dagrun_timeout_fails_skips_what_is_unfinished_and_calls_back(engine, dag_file, tmp_path):
    """Airflow's dagrun_timeout (scheduler_job_runner: the run failed, unfinished task instances
    skipped, on_failure_callback with reason "timed_out" about the last unfinished one to start)."""
    import time

    from airstep.runtime.store import RunKey
    from airstep_local.engine import RunRequest
    from helpers import load_model

    log = tmp_path / "callback.txt"
    model, source = load_model(dag_file(TIMED.format(log=str(log), timeout=1)))
    assert model.dagrun_timeout == 1.0
    result = engine.run(model, source, RunRequest())
    assert result.state == "failed" and "dagrun_timeout" in result.error
    assert {t.task_id: t.state for t in result.tasks} == {"quick": "success", "slow": "skipped", "after": "skipped"}
    assert log.read_text() == "timed_out slow"
    time.sleep(2)  # the slow try ends after all: what it reports changes nothing
    slow = engine.store.get_task_instances(RunKey("slow_run", result.run_id), ["slow"])["slow"]
    assert slow.state == "skipped" and slow.xcom() is None


def test_dagrun_timeout_is_the_state_machines_timeout_and_is_checked(dag_file):
    from airstep.loader import load_dag_file
    from airstep_compiler import compile_dag
    from helpers import load_model

    model, source = load_model(dag_file(TIMED.format(log="/dev/null", timeout=90.5)))
    assert compile_dag(model, source).definition["TimeoutSeconds"] == 91
    for bad in ("timedelta(0)", "30"):
        loaded = load_dag_file(str(dag_file(TIMED.replace("timedelta(seconds={timeout})", bad).format(log="x"))))
        (error,) = loaded.errors
        assert "dagrun_timeout must be a timedelta of 1 second or more" in error.message
