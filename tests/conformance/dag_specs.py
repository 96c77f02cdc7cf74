"""Random DAGs for the differential conformance suite, written once as data and rendered as a DAG file
for Airflow 3.3 and for airstep (the same body; only the imports differ).

A task's own behaviour: it fails its first `fail_tries` tries (a plain exception, so retries apply),
then ends as `ending` says: succeeds, skips itself (AirflowSkipException) or fails without retrying
(AirflowFailException). With `retries`, and `retry_delay=timedelta(0)`, Airflow's dag.test() retries
at once. Every trigger rule appears, on joins and on roots.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from typing import Any

from airstep.states import TaskState
from airstep.trigger_rule import TriggerRule
from airstep_local.expected_states import Expected, OrderDependent, PlannedTask, expected_states

RULES = tuple(rule.value for rule in TriggerRule)
ENDINGS = ("succeeds", "skips", "fails")
# (fail_tries, ending, retries choices): weights of a plain success, a failure, a skip, a flaky task
# that retries into success (or runs out of retries), a hard failure, and a skip after a retry
BEHAVIOURS = (
    ((0, "succeeds", (0,)), 5),
    ((99, "succeeds", (0, 1)), 2),
    ((0, "skips", (0,)), 2),
    ((1, "succeeds", (0, 1, 2)), 1),
    ((2, "succeeds", (1, 2)), 1),
    ((0, "fails", (0, 1)), 1),
    ((1, "skips", (1,)), 1),
)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    task_id: str
    upstream: tuple[str, ...]
    trigger_rule: str
    fail_tries: int
    ending: str
    retries: int

    def planned(self) -> PlannedTask:
        """The task as Airflow's semantics see it: the state and try count its own tries end with."""
        if self.fail_tries > self.retries:
            outcome, tries = TaskState.FAILED, self.retries + 1
        else:
            ending = {"succeeds": TaskState.SUCCESS, "skips": TaskState.SKIPPED, "fails": TaskState.FAILED}
            outcome, tries = ending[self.ending], self.fail_tries + 1
        return PlannedTask(self.task_id, self.upstream, TriggerRule(self.trigger_rule), outcome, tries)


@dataclass(frozen=True, slots=True)
class DagSpec:
    dag_id: str
    tasks: tuple[TaskSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "tasks": [asdict(t) for t in self.tasks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DagSpec:
        tasks = tuple(TaskSpec(**{**t, "upstream": tuple(t["upstream"])}) for t in data["tasks"])
        return cls(data["dag_id"], tasks)

    def expected(self) -> Expected:
        """What Airflow's semantics give; raises OrderDependent when the answer depends on timing."""
        return expected_states([t.planned() for t in self.tasks])

    def render(self, engine: str) -> str:
        """The DAG file for `engine` ("airflow" or "airstep")."""
        imports = {
            "airflow": [
                "from airflow.sdk import DAG",
                "from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException",
                "from airflow.providers.standard.operators.python import PythonOperator",
            ],
            "airstep": ["from airstep import DAG, AirflowFailException, AirflowSkipException, PythonOperator"],
        }[engine]
        lines = [
            "from datetime import datetime, timedelta",
            *imports,
            "",
            "",
            "def act(fail_tries, ending, ti=None):",
            "    if ti.try_number <= fail_tries:",
            "        raise RuntimeError(f'planned failure of try {ti.try_number}')",
            "    if ending == 'skips':",
            "        raise AirflowSkipException('planned skip')",
            "    if ending == 'fails':",
            "        raise AirflowFailException('planned failure, no retry')",
            "",
            "",
            f"with DAG({self.dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1)):",
        ]
        for t in self.tasks:
            lines.append(
                f"    {t.task_id} = PythonOperator(task_id={t.task_id!r}, python_callable=act, "
                f"op_args=[{t.fail_tries}, {t.ending!r}], trigger_rule={t.trigger_rule!r}, "
                f"retries={t.retries}, retry_delay=timedelta(0))"
            )
        lines += [f"    {u} >> {t.task_id}" for t in self.tasks for u in t.upstream]
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        """One line per task, for failure messages."""
        return "\n".join(
            f"  {t.task_id}: upstream={list(t.upstream)} rule={t.trigger_rule} "
            f"fail_tries={t.fail_tries} then {t.ending} retries={t.retries}"
            for t in self.tasks
        )


def random_spec(rng: random.Random, dag_id: str) -> DagSpec:
    """A random DAG of 5-12 tasks; it may be order-dependent (see `unambiguous_specs`)."""
    count = rng.randint(5, 12)
    ids = [f"t{i}" for i in range(count)]
    behaviours, weights = zip(*BEHAVIOURS, strict=True)
    tasks = []
    for i, task_id in enumerate(ids):
        joins = rng.choices((0, 1, 2, 3, 4), weights=(1, 4, 4, 2, 1))[0] if i else 0
        upstream = tuple(sorted(rng.sample(ids[:i], min(i, joins)), key=ids.index))
        rule = rng.choice(RULES) if upstream or rng.random() < 0.2 else "all_success"
        fail_tries, ending, retry_choices = rng.choices(behaviours, weights=weights)[0]
        tasks.append(TaskSpec(task_id, upstream, rule, fail_tries, ending, rng.choice(retry_choices)))
    return DagSpec(dag_id, tuple(tasks))


def unambiguous_specs(seed: int, count: int, prefix: str = "conformance") -> tuple[list[DagSpec], int]:
    """`count` random DAGs whose Airflow answer does not depend on timing, and how many were drawn
    and set aside because it does."""
    rng = random.Random(seed)
    specs: list[DagSpec] = []
    set_aside = 0
    while len(specs) < count:
        spec = random_spec(rng, f"{prefix}_{seed}_{len(specs):04d}")
        try:
            spec.expected()
        except OrderDependent:
            set_aside += 1
            continue
        specs.append(spec)
    return specs, set_aside


def dumps(records: list[dict[str, Any]]) -> str:
    """Fixture text: one JSON object per line, keys sorted, so diffs stay readable."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def _named(dag_id: str, *tasks: tuple[str, tuple[str, ...], str, int, str]) -> DagSpec:
    """A hand-written case: (task_id, upstream, rule, fail_tries, ending) per task, no retries."""
    return DagSpec(dag_id, tuple(TaskSpec(t, up, rule, fails, ending, 0) for t, up, rule, fails, ending in tasks))


# The divergences the suite was built to end, each with its own test (test_named_cases.py).
NAMED = {
    spec.dag_id: spec
    for spec in (
        _named(
            "one_success_with_a_failed_and_a_skipped_upstream",
            ("fails", (), "all_success", 99, "succeeds"),
            ("skips", (), "all_success", 0, "skips"),
            ("joins", ("fails", "skips"), "one_success", 0, "succeeds"),
        ),
        _named(
            "all_success_with_a_skip_that_arrives_before_a_failure",
            ("skips", (), "all_success", 0, "skips"),
            ("fails_after", ("skips",), "none_failed", 99, "succeeds"),
            ("joins", ("skips", "fails_after"), "all_success", 0, "succeeds"),
        ),
        _named(
            "one_done_with_every_upstream_upstream_failed",
            ("fails", (), "all_success", 99, "succeeds"),
            ("left", ("fails",), "all_success", 0, "succeeds"),
            ("right", ("fails",), "all_success", 0, "succeeds"),
            ("joins", ("left", "right"), "one_done", 0, "succeeds"),
        ),
        _named(
            "all_done_min_one_success",
            ("root", (), "all_done_min_one_success", 0, "succeeds"),
            ("fails", (), "all_success", 99, "succeeds"),
            ("skips", (), "all_success", 0, "skips"),
            ("runs", ("root", "fails"), "all_done_min_one_success", 0, "succeeds"),
            ("skipped", ("root", "skips"), "all_done_min_one_success", 0, "succeeds"),
            ("upstream_failed", ("fails",), "all_done_min_one_success", 0, "succeeds"),
        ),
    )
}
