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

USAGE = "usage"  # the key of an executor's response that holds its own usage
# What a run's items carry of their invocations' Lambda usage (task instances, and the run's usage items)
USAGE_REQUESTS, USAGE_MB_MS = "usage_requests", "usage_mb_ms"
ADD_USAGE = f"ADD {USAGE_REQUESTS} :requests, {USAGE_MB_MS} :mb_ms"  # an update's clause (usage_values: its values)
MAX_CHILD_HISTORIES = 200  # Distributed Map children whose histories are read; the rest are estimated from them
COUNTING_BUDGET_SECONDS = 20.0  # reading children's histories stops then (the track-runs function has 60 s)


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


def usage_values(usage: LambdaUsage) -> dict[str, Any]:
    """The values ADD_USAGE adds."""
    return {":requests": {"N": str(usage.requests)}, ":mb_ms": {"N": str(usage.mb_ms)}}


def carried_usage(items: list[dict[str, Any]]) -> LambdaUsage:
    """The Lambda usage records carry (their USAGE_REQUESTS and USAGE_MB_MS), together."""
    return LambdaUsage(
        sum(int(i.get(USAGE_REQUESTS, {}).get("N", 0)) for i in items),
        sum(int(i.get(USAGE_MB_MS, {}).get("N", 0)) for i in items),
    )


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


def count_transitions(sfn: Any, execution_arn: str, budget_seconds: float = COUNTING_BUDGET_SECONDS) -> Transitions:
    """Count what Step Functions bills as transitions: every state entered and every retry of a task
    state, in the execution and in the child executions of its Distributed Maps. At most
    MAX_CHILD_HISTORIES children are read in all, within `budget_seconds`: the others are estimated
    from those read (or from their processor's path) and the count says it is estimated."""
    deadline = time.monotonic() + budget_seconds
    count = _history_transitions(sfn, execution_arn)
    children_read = 0
    estimated = False
    path: list[int] = []  # a child's path through its processor, read once if needed
    for map_run in _paged(sfn.list_map_runs, "mapRuns", executionArn=execution_arn):
        arn = map_run["mapRunArn"]
        total = sfn.describe_map_run(mapRunArn=arn)["executionCounts"]["total"]
        wanted = min(total, MAX_CHILD_HISTORIES - children_read)
        try:
            listed = _first(_paged(sfn.list_executions, "executions", mapRunArn=arn, maxResults=1000), wanted)
        except TypeError:  # moto lists no map run's children (nor keeps their history)
            listed = []
        counted = read = 0
        for child in listed:
            if time.monotonic() > deadline:
                break
            counted += _history_transitions(sfn, child["executionArn"])
            read += 1
        children_read += read
        count += counted
        if read < total:
            if not read and not path:
                path.append(_processor_path(sfn, execution_arn))
            per_child = counted / read if read else path[0]
            count += round(per_child * (total - read))
            estimated = True
    return Transitions(count, estimated)


def _first(items: Any, wanted: int) -> list[Any]:
    found: list[Any] = []
    if wanted <= 0:  # (no page asked for)
        return found
    for item in items:
        found.append(item)
        if len(found) >= wanted:  # (before the next page is fetched)
            break
    return found


def _processor_path(sfn: Any, execution_arn: str) -> int:
    """The states a Distributed Map child enters when nothing fails (the longest of the definition's
    Distributed Map processors)."""
    definition = json.loads(sfn.describe_state_machine_for_execution(executionArn=execution_arn)["definition"])
    return max(_distributed_paths(definition["States"]), default=1)


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
    history = _paged(
        sfn.get_execution_history, "events", executionArn=execution_arn, maxResults=1000, includeExecutionData=False
    )
    for event in history:
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
