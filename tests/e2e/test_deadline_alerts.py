"""Deadline alerts end to end on the local engine: armed by the run's first step as one-off schedules,
fired in real time as EventBridge Scheduler would fire them, decided once by the task runner, the
callback run on the executor. Which Airflow behaviour each pins: see tests/unit/test_deadlines.py."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from test_cli import airstep
from test_ui import get

from airstep.runtime.store import RunKey
from airstep_local.engine import LocalEngine, RunRequest
from airstep_ui.records import LocalRecords
from airstep_ui.server import UiApp
from helpers import load_model

TWO_ALERTS = """
import time
from datetime import datetime, timedelta
from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback, task


def page(context=None, team=None, path=None):
    with open(path, "a") as out:
        out.write(f"{team} {context['dag_run']['dag_run_id']} {context['dag_run']['state']}\\n")


alerts = [
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=1),
        callback=SyncCallback(page, kwargs={"team": "finance", "path": PATH}),
        name="late",
    ),
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=10),
        callback=SyncCallback(page, kwargs={"team": "never", "path": PATH}),
        name="generous",
    ),
]

with DAG("extract_by_six", schedule=None, start_date=datetime(2026, 1, 1), deadline=alerts):
    @task
    def extract():
        time.sleep(2.5)

    extract()
"""


def test_a_missed_deadline_fires_its_callback_once_and_a_met_one_fires_nothing(tmp_path):
    calls = tmp_path / "calls.txt"
    (tmp_path / "dag.py").write_text(TWO_ALERTS.replace("PATH", repr(str(calls))))
    ran = airstep("run", "dag.py", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "deadline 'late' missed: manual__" in ran.stderr and "had not ended by" in ran.stderr
    assert "generous" not in ran.stderr
    (line,) = calls.read_text().splitlines()  # once, for the missed one, while the run was still running
    assert line.startswith("finance manual__") and line.endswith(" running")

    run_id = line.split()[1]
    shown = json.loads(airstep("runs", "show", run_id, "--json", cwd=tmp_path).stdout)
    assert [(d["name"], d["state"]) for d in shown["deadlines"]] == [("late", "missed"), ("generous", "met")]
    assert shown["deadlines"][0]["callback_called"] is True
    assert shown["state"] == "success"  # a missed deadline changes nothing about the run
    ui = UiApp(LocalRecords(tmp_path / ".airstep"))  # the UI's run page lists them too
    assert (
        json.loads(get(ui, f"/api/dags/extract_by_six/runs/{quote(run_id, safe='')}")[2])["deadlines"]
        == (shown["deadlines"])
    )
    assert "<th>deadline late</th>" in get(ui, f"/dags/extract_by_six/runs/{quote(run_id, safe='')}")[2]

    # cleared and run again, as in Airflow a met or missed deadline stays as it was: nothing fires again
    cleared = airstep("runs", "clear", run_id, cwd=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert len(calls.read_text().splitlines()) == 1 and "missed" not in cleared.stderr
    shown = json.loads(airstep("runs", "show", run_id, "--json", cwd=tmp_path).stdout)
    assert [(d["name"], d["state"]) for d in shown["deadlines"]] == [("late", "missed"), ("generous", "met")]


FAILS = """
from datetime import datetime, timedelta
from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback, task


def page(context, path):
    with open(path, "a") as out:
        out.write(context["dag_run"]["state"] + "\\n")


late = DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, timedelta(minutes=10), SyncCallback(page, {"path": PATH}))
with DAG("fails_fast", schedule=None, start_date=datetime(2026, 1, 1), deadline=late):
    @task
    def broken():
        raise ValueError("no data")

    broken()
"""


def test_a_run_that_failed_still_misses_its_deadline(engine, dag_file):
    """Airflow drops a run's deadline only when the run succeeds (DagRun.update_state prunes them on
    success): a failed run's deadline fires when it comes (here: as the run ends, locally)."""
    calls = Path(dag_file("").parent) / "failed.txt"
    model, source = load_model(dag_file(FAILS.replace("PATH", repr(str(calls)))))
    result = engine.run(model, source, RunRequest())
    assert result.state == "failed"
    (deadline,) = engine.store.deadlines(RunKey("fails_fast", result.run_id))
    assert deadline.state == "missed" and calls.read_text().splitlines() == ["failed"]


PAST_AND_AVERAGE = """
from datetime import datetime, timedelta
from airflow.sdk import AsyncCallback, DAG, DeadlineAlert, DeadlineReference, task


async def page(context, path):
    with open(path, "a") as out:
        out.write(context["deadline"]["deadline_time"] + "\\n")


alerts = [
    DeadlineAlert(
        DeadlineReference.FIXED_DATETIME(datetime(2026, 1, 1, 6, tzinfo=__import__("datetime").timezone.utc)),
        timedelta(0),
        AsyncCallback(page, kwargs={"path": PATH}),
        name="at six",
    ),
    DeadlineAlert(
        DeadlineReference.AVERAGE_RUNTIME(max_runs=3), timedelta(minutes=10), AsyncCallback(page, {"path": PATH})
    ),
]

with DAG("quick", schedule=None, start_date=datetime(2026, 1, 1), deadline=alerts):
    @task
    def work():
        return 1

    work()
"""


def test_a_deadline_already_past_fires_as_the_run_starts_and_average_runtime_waits_for_history(dag_file):
    """FIXED_DATETIME in the past: missed at once (Airflow's scheduler handles it at its next loop),
    its AsyncCallback awaited; AVERAGE_RUNTIME with fewer than min_runs successful runs: no deadline.
    (The runner logs at INFO, as in Lambda: a miss's log line is written.)"""
    calls = Path(dag_file("").parent) / "calls.txt"
    model, source = load_model(dag_file(PAST_AND_AVERAGE.replace("PATH", repr(str(calls)))))
    missed = []
    with LocalEngine(log_level="INFO") as engine:
        engine.on_deadline = lambda run_id, decided: missed.append((run_id, decided["alert"]))
        for _ in range(4):
            result = engine.run(model, source, RunRequest())
            assert result.state == "success"
        runs = sorted(engine.store.runs_of_dag("quick"), key=lambda r: r.start_date or "")
        states = [[(d.alert, d.state) for d in engine.store.deadlines(RunKey("quick", r.run_id))] for r in runs]
    # every run missed the fixed deadline at once; the average's deadline came with the fourth run (the
    # three before it succeeded), and it ended well within that average plus ten minutes
    assert states == [[(0, "missed")]] * 3 + [[(0, "missed"), (1, "met")]]
    assert calls.read_text().splitlines() == ["2026-01-01T06:00:00+00:00"] * 4
    assert sorted(missed) == sorted((r.run_id, 0) for r in runs)
