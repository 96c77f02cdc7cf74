"""Step Functions quotas the compiler guards, and what a run of a compiled machine will cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airstep.model import DagModel
    from airstep_compiler.compile import CompiledDag

# History events one state adds on the happy path (entered/scheduled/started/succeeded/exited...).
_EVENTS = {"Task": 5, "Wait": 6, "Pass": 2, "Parallel": 4, "Map": 4, "Choice": 2, "Succeed": 2, "Fail": 2}
_EXECUTION_EVENTS = 2  # ExecutionStarted, ExecutionSucceeded/Failed
_EVENTS_PER_RETRY = 3  # TaskScheduled, TaskStarted, TaskFailed
_EVENTS_FAILURE_PATH = 5  # the task's @failed state


@dataclass(frozen=True, slots=True)
class Limits:
    definition_bytes: int = 1_048_576
    state_name_chars: int = 80
    history_events: int = 25_000


@dataclass(frozen=True, slots=True)
class LimitProblem:
    limit: str
    message: str


@dataclass(frozen=True, slots=True)
class RunEstimate:
    states: int
    transitions: int
    events: int

    def events_worst_case(self, model: DagModel) -> int:
        """Every task using all its retries and then failing."""
        extra = sum(t.retries * _EVENTS_PER_RETRY + _EVENTS_FAILURE_PATH for t in model.tasks)
        return self.events + extra


def estimate_run(definition: dict[str, Any]) -> RunEstimate:
    """Happy-path transitions and history events: every state but the @failed ones runs once, and a
    task Map's item processor runs once per item (gate only for items that wait)."""
    states = transitions = 0
    events = _EXECUTION_EVENTS
    items_of: dict[str, list[dict[str, Any]]] = {}
    for name, state in _walk(definition["States"]):
        states += 1
        if name.endswith("@failed") or name == "dagrun@failed":
            continue
        transitions += 1
        kind = state["Type"]
        if kind == "Pass" and isinstance(state.get("Result"), list):
            items_of[state["Next"]] = state["Result"]
        if kind == "Map":
            items = items_of.get(name, [])
            waiting = sum(1 for item in items if "wait_for" in item)
            choices = len(items) if waiting else 0  # a Map whose items never wait has no Choice
            states += len(state["ItemProcessor"]["States"])
            transitions += len(items) + choices + waiting  # run, choice, and the gate where there is one
            events += (
                _EVENTS["Map"]
                + len(items) * (2 + _EVENTS["Task"])
                + choices * _EVENTS["Choice"]
                + waiting * _EVENTS["Wait"]
            )
            continue
        if kind == "Task" and state["Resource"].endswith(".waitForTaskToken"):
            kind = "Wait"
        events += _EVENTS[kind]
    return RunEstimate(states=states, transitions=transitions, events=events)


def check_limits(compiled: CompiledDag, limits: Limits) -> LimitProblem | None:
    for name, _ in _walk(compiled.definition["States"], into_maps=True):
        if len(name) > limits.state_name_chars:
            return LimitProblem(
                "state-name-length", f"state name {name!r} is longer than {limits.state_name_chars} characters"
            )
    size = compiled.definition_bytes
    if size > limits.definition_bytes:
        return LimitProblem(
            "definition-size",
            f"the compiled definition is {size:,} bytes, over Step Functions' {limits.definition_bytes:,}-byte "
            f"definition limit ({compiled.task_count} tasks); split the DAG into smaller DAGs "
            "(automatic splitting into child executions is planned)",
        )
    if compiled.history_events_per_run > limits.history_events:
        return LimitProblem(
            "history-events",
            f"a run would write about {compiled.history_events_per_run:,} execution history events, over "
            f"Step Functions' {limits.history_events:,}-event limit; split the DAG into smaller DAGs",
        )
    return None


def _walk(states: dict[str, Any], into_maps: bool = False):
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", ()):
            yield from _walk(branch["States"], into_maps)
        if into_maps and "ItemProcessor" in state:
            yield from _walk(state["ItemProcessor"]["States"], into_maps)
