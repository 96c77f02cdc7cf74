"""one_success, one_failed, one_done and always start as soon as their rule is decided (Airflow's
trigger_rule_dep evaluates the upstreams arrived so far on every scheduler pass); dag.test() runs
tasks one at a time, so it shows the states (pinned here from the oracle: every task success but
`failing`, the run success) but not the timing, which is pinned against the slow upstream instead."""

from __future__ import annotations

from datetime import datetime

from airstep.runtime.trigger_rules import RUN, decide
from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule
from airstep_local.engine import LocalEngine, RunRequest
from helpers import ROOT, load_model

FILE = ROOT / "tests" / "fixtures" / "airflow_examples" / "airstep_early_start.py"
AIRFLOW_STATES = {
    "fast": "success",
    "slow": "success",
    "failing": "failed",
    "either": "success",
    "alarm": "success",
    "anyway": "success",
    "after": "success",
}


def test_decided_rules_start_before_their_slow_upstream_ends():
    model, source = load_model(FILE)
    assert model.early_tasks == {"either", "alarm", "anyway"}
    with LocalEngine() as engine:
        result = engine.run(model, source, RunRequest())
    assert result.state.value == "success"
    tasks = {t.task_id: t for t in result.tasks}
    assert {t: str(ti.state) for t, ti in tasks.items()} == AIRFLOW_STATES
    slow_end = datetime.fromisoformat(tasks["slow"].end)
    for early in ("either", "alarm", "anyway", "after"):
        assert datetime.fromisoformat(tasks[early].end) < slow_end, early


def test_an_early_task_waits_when_the_first_arrivals_do_not_decide():
    """one_success with a failed first arrival is not decided: it waits for the next one."""
    first = [(TaskState.FAILED, "2026-01-01T00:00:01+00:00")]
    assert decide(TriggerRule.ONE_SUCCESS, first, pending=1) is None
    second = [*first, (TaskState.SUCCESS, "2026-01-01T00:00:02+00:00")]
    assert decide(TriggerRule.ONE_SUCCESS, second, pending=1) == RUN


def test_a_branch_does_not_skip_an_early_task_that_is_already_running():
    """Airflow 3.3.2's ti_skip_downstream sets SKIPPED only on task instances that are not running
    (nor finished): the one_success task started by `fast` runs to success although `branch`,
    ending while it runs, follows only `other`."""
    model, source = load_model(ROOT / "tests" / "fixtures" / "airflow_examples" / "airstep_branch_meets_early_task.py")
    with LocalEngine() as engine:
        result = engine.run(model, source, RunRequest())
    tasks = {t.task_id: t for t in result.tasks}
    assert {t: str(ti.state) for t, ti in tasks.items()} == {
        "fast": "success",
        "branch": "success",
        "early": "success",
        "other": "success",
    }
    assert datetime.fromisoformat(tasks["early"].start) < datetime.fromisoformat(tasks["branch"].end)
    assert result.state.value == "success"


def test_one_upstream_decides_only_when_it_ends_so_nothing_starts_early():
    from airstep.model import DagModel, TaskModel

    tasks = (
        TaskModel("a", (), 1),
        TaskModel("alert", ("a",), 2, trigger_rule=TriggerRule.ONE_FAILED),
        TaskModel("anyway", ("a",), 3, trigger_rule=TriggerRule.ALWAYS),
    )
    assert DagModel("d", "d.py", 1, tasks).early_tasks == {"anyway"}
