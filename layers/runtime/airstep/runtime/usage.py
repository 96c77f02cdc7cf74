"""What a run uses of what AWS bills per run: Lambda requests and GB-seconds, Step Functions transitions.

Each task-runner invocation meters itself (its handler's time at its configured memory) and the
executor invocations it waited on (which report their own), and adds them to the run's record in one
write as it ends. The run tracker counts the state transitions of each execution from its history
when the execution ends. Prices are applied where the usage is shown (airstep_cli.prices).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

USAGE = "usage"  # the key of an executor's response that holds its own usage
MAX_CHILD_HISTORIES = 200  # Distributed Map children whose histories are read; the rest are estimated from them


@dataclass(slots=True)
class LambdaUsage:
    """Lambda requests and their billed duration at their memory (MB x ms, each request's ms rounded up)."""

    requests: int = 0
    mb_ms: int = 0

    def add(self, milliseconds: float, memory_mb: int) -> None:
        self.requests += 1
        self.mb_ms += math.ceil(milliseconds) * memory_mb

    def add_reported(self, reported: Any) -> bool:
        """Add what an executor reported of itself ({"ms": ..., "memory_mb": ...}); False if nothing."""
        if not isinstance(reported, dict) or not {"ms", "memory_mb"} <= reported.keys():
            return False
        self.add(float(reported["ms"]), int(reported["memory_mb"]))
        return True

    @property
    def gb_seconds(self) -> float:
        return self.mb_ms / 1024 / 1000


@dataclass(slots=True)
class Meter:
    """Times one invocation of a function with `memory_mb` of memory, and what it waited on."""

    memory_mb: int
    began: float = field(default_factory=time.perf_counter)
    waited_on: LambdaUsage = field(default_factory=LambdaUsage)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.began) * 1000

    def report(self) -> dict[str, Any]:
        """This invocation's own usage, as an executor returns it to the runner."""
        return {"ms": round(self.elapsed_ms(), 3), "memory_mb": self.memory_mb}

    def total(self) -> LambdaUsage:
        """This invocation (so far) and every invocation it waited on."""
        usage = LambdaUsage(self.waited_on.requests, self.waited_on.mb_ms)
        usage.add(self.elapsed_ms(), self.memory_mb)
        return usage


@dataclass(frozen=True, slots=True)
class Transitions:
    """The state transitions of an execution: counted from its history, plus its Distributed Map
    children's (`estimated` when there were more children than were read)."""

    count: int
    estimated: bool = False


def count_transitions(sfn: Any, execution_arn: str) -> Transitions:
    """Count what Step Functions bills as transitions: every state entered and every retry of a task
    state, in the execution and in the child executions of its Distributed Maps."""
    count = _history_transitions(sfn, execution_arn)
    estimated = False
    for map_run in _paged(sfn.list_map_runs, "mapRuns", executionArn=execution_arn):
        try:
            children = [
                e["executionArn"] for e in _paged(sfn.list_executions, "executions", mapRunArn=map_run["mapRunArn"])
            ]
        except (ClientError, TypeError):  # moto lists no map run's children (nor keeps their history)
            count += _children_estimate(sfn, execution_arn, map_run["mapRunArn"])
            estimated = True
            continue
        read = children[:MAX_CHILD_HISTORIES]
        counted = sum(_history_transitions(sfn, child) for child in read)
        count += counted
        if len(children) > len(read):
            count += round(counted / len(read) * (len(children) - len(read)))
            estimated = True
    return Transitions(count, estimated)


def _children_estimate(sfn: Any, execution_arn: str, map_run_arn: str) -> int:
    """A map run's children as if each took its processor's path once (the longest of the definition's
    Distributed Map processors)."""
    children = sfn.describe_map_run(mapRunArn=map_run_arn)["executionCounts"]["total"]
    definition = json.loads(sfn.describe_state_machine_for_execution(executionArn=execution_arn)["definition"])
    return children * max(_distributed_paths(definition["States"]), default=1)


def _distributed_paths(states: dict[str, Any]) -> list[int]:
    found = []
    for state in states.values():
        processor = state.get("ItemProcessor")
        if processor is not None:
            if processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
                found.append(happy_path_length(processor))
            found += _distributed_paths(processor["States"])
    return found


def happy_path_length(machine: dict[str, Any]) -> int:
    """The states a run of `machine` enters when nothing fails: from StartAt along Next and the
    Choice defaults (a Parallel or Map state as one)."""
    states, name, seen = machine["States"], machine["StartAt"], set()
    while name is not None and name not in seen:
        seen.add(name)
        state = states[name]
        name = state.get("Next", state.get("Default"))
    return len(seen)


def _history_transitions(sfn: Any, execution_arn: str) -> int:
    entered = retried = 0
    scheduled: dict[int, int] = {}  # a task state's entry (its event id) -> the tasks it scheduled
    current: dict[int, int] = {}  # an event id -> the task state entry it belongs to
    for event in _paged(sfn.get_execution_history, "events", executionArn=execution_arn, maxResults=1000):
        kind, event_id, previous = event["type"], event["id"], event.get("previousEventId", 0)
        if kind.endswith("StateEntered"):
            entered += 1
            if kind == "TaskStateEntered":
                scheduled[event_id] = 0
                current[event_id] = event_id
        elif previous in current:
            entry = current[event_id] = current[previous]
            if kind in ("TaskScheduled", "LambdaFunctionScheduled"):
                scheduled[entry] += 1
                retried += scheduled[entry] > 1  # each attempt after the first is a retry
    return entered + retried


def _paged(call: Any, items: str, **request: Any) -> Any:
    while True:
        page = call(**request)
        yield from page.get(items, [])
        if not page.get("nextToken"):
            return
        request["nextToken"] = page["nextToken"]
