"""What Airflow 3.3 makes of a DAG whose tasks' own outcomes are known, in every order its tasks may
end, and whether that order matters.

Airflow decides a trigger rule on the upstream states arrived so far (airstep.runtime.trigger_rules),
so where two upstreams may end in either order the answer can depend on which ended first: an
`all_success` task with a skipped and a failed upstream is skipped if the skip arrived first and
upstream_failed otherwise. Such a DAG has no single answer - it depends on how long tasks take - and
`expected_states` refuses it (OrderDependent); for every other DAG it gives the one answer.

Which orders are possible: a task's end cannot come before an upstream arrival that its rule waits
for. `_Timing.blocked(v, S)` says whether v must end after some member of S (v cannot end before all
of them): v is not blocked when its rule is decided by the upstreams that are not themselves blocked.
Everything not blocked by S can end before all of S at once (delay S and what waits for it), so an
order of a task's upstreams is possible exactly when no upstream in it is blocked by those after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import permutations

from airstep.runtime.trigger_rules import Arrived, Decision, decide_on, verdict
from airstep.states import FAILED_STATES, RunState, TaskState
from airstep.trigger_rule import TriggerRule


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task, and how its own tries end when it runs: in `outcome`, after `tries` tries."""

    task_id: str
    upstream: tuple[str, ...]
    rule: TriggerRule
    outcome: TaskState
    tries: int


@dataclass(frozen=True, slots=True)
class Expected:
    states: dict[str, TaskState]
    tries: dict[str, int]
    run_state: RunState


class OrderDependent(ValueError):
    """Airflow's answer for a task depends on the order in which its upstreams end."""

    def __init__(self, task_id: str, answers: dict[tuple[str, ...], Decision]) -> None:
        described = "; ".join(f"{' then '.join(order)}: {_describe(d)}" for order, d in answers.items())
        super().__init__(f"task {task_id!r} depends on the order its upstreams end in ({described})")
        self.task_id = task_id


def expected_states(tasks: Sequence[PlannedTask]) -> Expected:
    """Every task's final state and try number, and the run's state, as Airflow gives them."""
    timing = _Timing({t.task_id: t for t in tasks})
    states: dict[str, TaskState] = {}
    tries: dict[str, int] = {}
    for task in _topological(tasks):
        decision = timing.decide(task, states)
        states[task.task_id] = task.outcome if decision.runs else decision.state  # type: ignore[assignment]
        tries[task.task_id] = task.tries if decision.runs else 0
    downstream = {u for t in tasks for u in t.upstream}
    leaves = [t.task_id for t in tasks if t.task_id not in downstream]
    failed = any(states[t] in FAILED_STATES for t in leaves)
    return Expected(states, tries, RunState.FAILED if failed else RunState.SUCCESS)


class _Timing:
    """The order constraints between task ends, given the states decided so far (in topological order)."""

    def __init__(self, tasks: dict[str, PlannedTask]) -> None:
        self.tasks = tasks
        self.states: dict[str, TaskState] = {}
        self._blocked: dict[tuple[str, frozenset[str]], bool] = {}

    def decide(self, task: PlannedTask, states: dict[str, TaskState]) -> Decision:
        """The task's decision, the same in every possible order of its upstreams' ends."""
        self.states = states
        if not task.upstream or task.rule is TriggerRule.ALWAYS:
            return decide_on(task.rule, 0, [])[1]
        answers: dict[tuple[str, ...], Decision] = {}
        for order in permutations(sorted(task.upstream)):
            if not any(self.blocked(order[i], frozenset(order[i + 1 :])) for i in range(len(order) - 1)):
                answers[order] = decide_on(task.rule, len(order), ([states[u]] for u in order))[1]
        if len(set(answers.values())) > 1:
            raise OrderDependent(task.task_id, answers)
        return next(iter(answers.values()))

    def blocked(self, task_id: str, later: frozenset[str]) -> bool:
        """Whether `task_id` must end after some member of `later`."""
        key = (task_id, later)
        if key not in self._blocked:
            task = self.tasks[task_id]
            if task_id in later:
                self._blocked[key] = True
            elif not task.upstream or task.rule is TriggerRule.ALWAYS:
                self._blocked[key] = False
            else:
                free = [u for u in task.upstream if not self.blocked(u, later)]
                self._blocked[key] = not self._decidable(task, free)
        return self._blocked[key]

    def _decidable(self, task: PlannedTask, arrived: Iterable[str]) -> bool:
        counts = Arrived(len(task.upstream))
        for u in arrived:
            counts = counts.plus(self.states[u])
        return verdict(task.rule, counts) is not None


def _topological(tasks: Sequence[PlannedTask]) -> list[PlannedTask]:
    by_id = {t.task_id: t for t in tasks}
    placed: dict[str, PlannedTask] = {}

    def place(task: PlannedTask) -> None:
        if task.task_id in placed:
            return
        for u in task.upstream:
            place(by_id[u])
        placed[task.task_id] = task

    for task in tasks:
        place(task)
    return list(placed.values())


def _describe(decision: Decision) -> str:
    return "runs" if decision.runs else str(decision.state)
