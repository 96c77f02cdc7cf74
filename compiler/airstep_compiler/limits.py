"""Step Functions quotas the compiler guards, and what a run of a compiled machine will cost.

The emitter adds every state it writes to a `RunCost` with the number of times a run enters it on
the happy path, so the estimate follows the plan exactly; `check_limits` holds it against the quotas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STATE_NAME_CHARS = 80  # Step Functions' limit on state names
STATE_MACHINE_NAME_CHARS = 80  # ... and on state machine names

# History events a state adds each time a run enters it (entered/scheduled/started/succeeded/exited...);
# "Wait" is a task waiting for its token, "Call" a service integration's Task state.
_EVENTS = {
    "Task": 5,
    "Call": 5,
    "Wait": 6,
    "Sleep": 2,
    "Pass": 2,
    "Parallel": 4,
    "Map": 4,
    "Choice": 2,
    "Succeed": 2,
    "Fail": 2,
}
_EVENTS_PER_MAP_ITEM = 2  # MapIterationStarted, MapIterationSucceeded
_EXECUTION_EVENTS = 2  # ExecutionStarted, ExecutionSucceeded/Failed
_EVENTS_PER_RETRY = 3  # TaskScheduled, TaskStarted, TaskFailed
# An AWS operator's retry runs its try's branch again: the run step, the Choice, the call, the record step
_EVENTS_PER_CALL_RETRY = _EVENTS["Parallel"] + 3 * _EVENTS["Task"] + _EVENTS["Choice"]
_EVENTS_FAILURE_PATH = 5  # a task's failure state


@dataclass(frozen=True, slots=True)
class Limits:
    definition_bytes: int = 1_048_576
    state_name_chars: int = STATE_NAME_CHARS
    history_events: int = 25_000


@dataclass(frozen=True, slots=True)
class LimitProblem:
    limit: str
    message: str


class RunCost:
    """States in the definition, and the transitions and history events of a run that succeeds."""

    def __init__(self) -> None:
        self.states = 0
        self.transitions = 0
        self.invocations = 0  # of the task runner: each Task state, and each gate (a Task waiting for its token)
        self.executor_calls = 0  # of the executor: each task's run state (its code's try)
        self.events = _EXECUTION_EVENTS
        self.retried_poll_events = 0  # an AWS operator's describe calls, made again by each retry
        self.longest_name = ""

    def add(self, name: str, kind: str, runs: int = 1, runs_code: bool = False) -> None:
        """A state of type `kind` that a run enters `runs` times (0: only on a failure path), calling
        the executor each time if it `runs_code`."""
        self.states += 1
        self.transitions += runs
        self.invocations += runs if kind in ("Task", "Wait") else 0
        self.executor_calls += runs if runs_code else 0
        self.events += runs * _EVENTS[kind]
        if len(name) > len(self.longest_name):
            self.longest_name = name

    def add_map_items(self, items: int) -> None:
        """A Map's iterations, beyond the states each item enters."""
        self.events += items * _EVENTS_PER_MAP_ITEM

    def worst_case_events(self, retries: Sequence[int], call_retries: Sequence[int] = ()) -> int:
        """History events if every task (with these retries; AWS operators with `call_retries`) uses
        all its retries and then fails."""
        return (
            self.events
            + sum(r * _EVENTS_PER_RETRY + _EVENTS_FAILURE_PATH for r in retries)
            + sum(r * _EVENTS_PER_CALL_RETRY + _EVENTS_FAILURE_PATH for r in call_retries)
            + self.retried_poll_events
        )


def check_limits(cost: RunCost, definition_bytes: int, task_count: int, limits: Limits) -> LimitProblem | None:
    if len(cost.longest_name) > limits.state_name_chars:
        return LimitProblem(
            "state-name-length",
            f"state name {cost.longest_name!r} is longer than {limits.state_name_chars} characters",
        )
    if definition_bytes > limits.definition_bytes:
        return LimitProblem(
            "definition-size",
            f"the compiled definition is {definition_bytes:,} bytes, over Step Functions' "
            f"{limits.definition_bytes:,}-byte definition limit ({task_count} tasks); split the DAG into smaller "
            "DAGs (automatic splitting into child executions is planned)",
        )
    if cost.events > limits.history_events:
        return LimitProblem(
            "history-events",
            f"a run would write about {cost.events:,} execution history events, over "
            f"Step Functions' {limits.history_events:,}-event limit; split the DAG into smaller DAGs",
        )
    return None
