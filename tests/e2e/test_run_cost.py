"""What a run cost: its transitions (counted from the execution's history by the run tracker) and the
Lambda usage each runner invocation meters, priced; shown by `runs show`, the UI, and `airstep compile`."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from test_cli import airstep
from test_ui import get

from airstep.runtime import run_tracker
from airstep.runtime.store import RunKey
from airstep.runtime.usage import count_transitions
from airstep_cli.prices import LAMBDA_ARM64_GB_SECOND_USD, LAMBDA_REQUEST_USD
from airstep_ui.records import LocalRecords
from airstep_ui.server import UiApp
from helpers import EXAMPLES, KeepMachines, executions, load_model

SLEEPY = """
import time
from datetime import datetime, timedelta
from airstep import DAG, task

with DAG("sleepy", schedule=None, start_date=datetime(2026, 1, 1)):
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def nap(ti=None):
        time.sleep(0.3)
        if ti.try_number == 1:
            raise RuntimeError("not yet")

    @task
    def after():
        return 1

    nap() >> after()
"""

BIG_MAP = """
from datetime import datetime
from airstep import DAG, task

with DAG("big_map", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def items():
        return list(range(45))

    @task
    def double(x):
        return 2 * x

    double.expand(x=items())
"""


def _retries(sfn, execution_arn: str) -> int:
    """Task attempts after the first of each task state entered (read from the history here)."""
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return sum(e["type"] == "TaskScheduled" for e in events) - sum(e["type"] == "TaskStateEntered" for e in events)


def test_a_run_records_its_transitions_and_every_invocations_lambda_usage(engine, dag_file):
    engine.sfn = KeepMachines(engine.sfn)  # the history stays readable after the run
    model, source = load_model(dag_file(SLEEPY))
    from airstep_local.engine import RunRequest

    result = engine.run(model, source, RunRequest())
    key = RunKey("sleepy", result.run_id)
    usage = engine.store.get_run(key).usage(engine.store.lambda_usage(key))
    # every state entered, and the retry of `nap` (a retry is billed as a transition)
    arn = executions(engine.sfn, "sleepy")[0]["executionArn"]
    entered = engine.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert _retries(engine.sfn, arn) == 1
    assert usage["transitions"] == sum(e["type"].endswith("StateEntered") for e in entered) + 1
    assert usage["transitions_estimated"] is False
    # runner: nap twice, after, finalize; executor: nap twice, after
    assert usage["lambda_requests"] == 4 + 3
    # each of nap's tries slept 0.3 s in its 1,024 MB executor while its 256 MB runner waited on it
    assert usage["lambda_gb_seconds"] >= 2 * 0.3 * (1024 + 256) / 1024

    # a duplicate of the execution's final event counts nothing twice
    detail = run_tracker.execution_detail(engine.sfn.describe_execution(executionArn=arn))
    run_tracker.track(run_tracker.status_event(detail), engine.store, engine.sfn)
    assert engine.store.get_run(key).usage(engine.store.lambda_usage(key)) == usage


def test_a_distributed_maps_children_are_estimated_where_their_histories_cannot_be_read(engine, dag_file):
    """moto keeps no history of a Distributed Map's children (AWS does: test_usage reads them)."""
    engine.sfn = KeepMachines(engine.sfn)
    model, source = load_model(dag_file(BIG_MAP))
    from airstep_local.engine import RunRequest

    result = engine.run(model, source, RunRequest())
    arn = executions(engine.sfn, "big_map")[0]["executionArn"]
    events = engine.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    parent = sum(e["type"].endswith("StateEntered") for e in events)
    key = RunKey("big_map", result.run_id)
    usage = engine.store.get_run(key).usage(engine.store.lambda_usage(key))
    # each child runs its processor's one state: 45 children, 45 transitions
    assert (usage["transitions"], usage["transitions_estimated"]) == (parent + 45, True)
    assert count_transitions(engine.sfn, arn).count == parent + 45


def test_runs_show_json_and_the_ui_price_the_run(tmp_path):
    (tmp_path / "flaky.py").write_text((EXAMPLES / "flaky_retries.py").read_text())
    ran = airstep("run", "flaky.py", "--fast-retries", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]

    shown = airstep("runs", "show", run_id, "--json", cwd=tmp_path)
    data = json.loads(shown.stdout)
    usage, cost = data["usage"], data["cost"]
    assert usage["transitions"] == 8 and usage["lambda_requests"] == 9  # 6 states, 2 retries; 5 + 4 requests
    expected = 8 * 0.025 / 1000 + 9 * LAMBDA_REQUEST_USD + usage["lambda_gb_seconds"] * LAMBDA_ARM64_GB_SECOND_USD
    assert abs(cost["usd"] - expected) < 1e-8
    assert (cost["region"], cost["priced_as"]) == ("us-east-1", "us-east-1") and cost["prices_checked"]
    tries = {t["task_id"]: [(x["try_number"], x["state"]) for x in t["tries"]] for t in data["tasks"]}
    assert tries == {"flaky": [(1, "up_for_retry"), (2, "up_for_retry"), (3, "success")], "report": [(1, "success")]}

    text = airstep("runs", "show", run_id, cwd=tmp_path).stdout
    shown_cost = re.search(r"cost: \$(\d+\.\d{6}) \(8 transitions; 9 Lambda requests,", text)
    assert shown_cost and abs(float(shown_cost[1]) - cost["usd"]) <= 0.51e-6  # (rounded to 6 places, the JSON to 8)
    assert "at us-east-1 list prices of " in text

    app = UiApp(LocalRecords(tmp_path / ".airstep"))
    api = json.loads(get(app, f"/api/dags/flaky_retries/runs/{quote(run_id, safe='')}")[2])
    assert (api["usage"], api["cost"]) == (usage, cost)
    page = get(app, f"/dags/flaky_retries/runs/{quote(run_id, safe='')}")[2]
    assert f"<td class=cost>${cost['usd']:.6f} (8 transitions;" in page


def test_compile_prints_what_a_run_will_cost():
    compiled = airstep("compile", str(EXAMPLES / "flaky_retries.py"), "-o", "out")
    assert compiled.returncode == 0, compiled.stderr
    # 6 transitions and 5 requests (3 runner invocations, 2 tasks' code) when every task succeeds at once
    fixed = 6 * 0.025 / 1000 + 5 * LAMBDA_REQUEST_USD
    assert f"cost: ~${fixed:.5f}/run for its transitions and ~5 Lambda requests, plus $0.0000167 per second" in (
        compiled.stdout
    )


def test_an_executor_that_crashed_is_metered_for_the_time_the_runner_waited_on_it(engine, dag_file, monkeypatch):
    import time

    from airstep.runtime import executor
    from airstep_local.engine import RunRequest

    def killed(request, remaining_seconds=float("inf")):  # as Lambda ends a try that ran out of memory
        time.sleep(0.3)
        raise MemoryError

    monkeypatch.setattr(executor, "run_try", killed)
    model, source = load_model(dag_file(BIG_MAP.replace("double.expand(x=items())", "items()")))
    result = engine.run(model, source, RunRequest())
    assert result.tasks[0].error == "the task's executor ended abnormally (MemoryError)"
    key = RunKey("big_map", result.run_id)
    usage = engine.store.get_run(key).usage(engine.store.lambda_usage(key))
    assert usage["lambda_requests"] == 3  # the runner's try of items, its executor's, finalize
    assert usage["lambda_gb_seconds"] >= 0.3 * (1024 + 256) / 1024  # at the executor's TaskMemorySize
