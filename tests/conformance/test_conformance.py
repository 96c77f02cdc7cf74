"""airstep against Airflow 3.3, DAG by DAG: every recorded DAG, run on the local engine compiled as
usual (and a quarter of them again with every task behind a gate), must end with Airflow's run state
and every task's state and try number (airflow_outcomes.jsonl, recorded by record_airflow.py from
dag.test())."""

from __future__ import annotations

from pathlib import Path

import pytest

from airstep.loader import load_dag_file
from airstep.trigger_rule import TriggerRule
from conformance.airstep_runs import PLANS, Outcome, planned, run_plans
from conformance.dag_specs import DagSpec
from conformance.recorded import AIRFLOW, AIRFLOW_FILES, FILE_RECORDS, RECORDS, SPECS


@pytest.fixture(scope="module")
def airstep() -> dict[str, dict[str, Outcome]]:
    return run_plans(list(SPECS.values()))


def test_the_fixture_holds_at_least_500_recorded_dags():
    assert len([r for r in RECORDS if r["name"] is None]) >= 500


@pytest.mark.parametrize(
    ("plan", "dag_id"), [(plan, spec.dag_id) for plan in PLANS for spec in planned(plan, list(SPECS.values()))]
)
def test_airstep_agrees_with_airflow(airstep, plan, dag_id):
    got = airstep[plan][dag_id]
    want = AIRFLOW[dag_id]
    assert got.answer() == want, disagreement(SPECS[dag_id], plan, got, want)


def disagreement(spec: DagSpec, plan: str, got: Outcome, want: dict) -> str:
    """The DAG, and for each task where the answers differ: its upstreams as airstep saw them, both answers."""
    lines = [f"{spec.dag_id} ({plan}): run {got.run_state} on airstep, {want['run_state']} on Airflow", spec.describe()]
    for task in spec.tasks:
        ours, theirs = got.tasks.get(task.task_id), want["tasks"].get(task.task_id)
        if ours == theirs:
            continue
        upstream = ", ".join(
            f"{u}={got.tasks.get(u, {}).get('state')}@{got.ends.get(u)} (Airflow: {want['tasks'][u]['state']})"
            for u in task.upstream
        )
        lines.append(f"  {task.task_id} [{task.trigger_rule}]: airstep {ours}, Airflow {theirs}; upstream {upstream}")
    return "\n".join(lines)


def test_the_readme_trigger_rule_table_says_what_airflow_did():
    """Per rule, the states the README says a task takes without running are the ones Airflow gave."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("### Trigger rules", 1)[1].split("\n\n")[2]
    claimed = {}
    for row in table.splitlines()[2:]:
        _, rule, _runs_when, otherwise, _ = row.split("|")
        claimed[rule.strip().split("`")[1]] = {s for s in ("skipped", "upstream_failed") if s in otherwise}
    seen: dict[str, set[str]] = {rule.value: set() for rule in TriggerRule}
    for record in RECORDS:
        for task in record["spec"]["tasks"]:
            ti = record["airflow"]["tasks"][task["task_id"]]
            if ti["try_number"] == 0:
                seen[task["trigger_rule"]].add(ti["state"])
    # the random DAGs have no setup tasks: the teardown rule's states come from the setup/teardown files
    for record in FILE_RECORDS:
        if record["file"] == "airstep_setup_teardown.py":
            loaded = load_dag_file(AIRFLOW_FILES / record["file"]).dags[record["dag_id"]]
            for task_id, ti in record["airflow"]["tasks"].items():
                if ti["try_number"] == 0 and loaded.task_dict[task_id].is_teardown:
                    seen[TriggerRule.ALL_DONE_SETUP_SUCCESS.value].add(ti["state"])
    assert claimed == seen
