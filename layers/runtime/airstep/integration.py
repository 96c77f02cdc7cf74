"""Integration: a task of the graph model that an AWS operator runs as a Step Functions service
integration (airstep.sdk.operators.amazon builds it, the compiler emits it, the task runner ends it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Poll:
    """For a service with no `.sync` integration (a Glue crawler): the describe call Step Functions
    makes after the start call, again every `interval_seconds` while the value at `status` (a dotted
    path in its response) is one of `running`, at most `max_polls` times. It passes on the start
    call's `parameters` named. Once the work ended, the value at `failure` being one of `failed`
    fails the try, with the value at `message`. `running` empty: one describe call, no wait (the
    operator does not wait; the describe call gives its XCom)."""

    resource: str
    parameters: tuple[str, ...]
    status: str
    running: tuple[str, ...] = ()
    failure: str = ""
    failed: tuple[str, ...] = ()
    message: str = ""
    interval_seconds: int = 5
    max_polls: int = 1
    resume_on: tuple[str, ...] = ()  # errors of the start call after which the work is waited for anyway
    failed_as: str = "WaiterError"  # the error a failed end is (the provider's: its waiter's, or its trigger's)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Poll:
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def at_path(data: Any, path: str) -> Any:
    """The value at a dotted path (`Crawler.LastCrawl.Status`) of a response, or None."""
    for key in path.split(".") if path else ():
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


_OPTIONAL = ("poll", "errors", "ended", "succeeded", "also_push")  # left out of a model when empty


@dataclass(frozen=True, slots=True)
class Integration:
    """An AWS operator compiled to a Step Functions service integration instead of task code: the
    Task state's `resource` and static `parameters`; the parameter names whose values the try's
    prepare step renders at run time (`rendered`: templated fields, upstream outputs); what the
    operator returns (its XCom, if `push`): the response's `returns` keys that it has (with
    `returns_value`, the value of its one key: an execution ARN), or with `as_text` its `Payload` as
    JSON text (Lambda's, a string in Airflow). `prepare`: the run step calls the executor (to render,
    or for an on_execute_callback). `region`: the region_name the DAG gave (it must be the
    environment's). `wait_seconds`: how long the operator waits for what it started (its waiter's
    attempts times their delay), the call's time limit unless execution_timeout is shorter. `poll`:
    the describe calls that wait for the work when the service has no `.sync` (the XCom is then read
    from the last one; a `returns` key may be a dotted path). `errors`: a key of the response that,
    not empty, fails the try (S3 DeleteObjects answers per-key errors in a success). `ended` and
    `succeeded`: a response whose `ended` key is not one of `succeeded` fails the try. `also_push`:
    XComs the operator pushes besides its return value (Glue's `glue_job_run_id`)."""

    operator: str
    resource: str
    parameters: dict[str, Any]
    rendered: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    push: bool = True
    as_text: bool = False
    prepare: bool = False
    region: str | None = None
    returns_value: bool = False
    wait_seconds: float | None = None
    poll: Poll | None = None
    errors: str = ""
    ended: str = ""  # the response's key holding the state the work ended in (a waited-for Glue job run's)
    succeeded: tuple[str, ...] = ()  # ... the states that are a success: any other fails the try
    also_push: tuple[tuple[str, str], ...] = ()  # (XCom key, response key): pushed besides the return value

    def time_limit(self, execution_timeout: float | None) -> float | None:
        """The call's time limit: the task's execution_timeout, or sooner the operator's own wait."""
        limits = [limit for limit in (execution_timeout, self.wait_seconds) if limit is not None]
        return min(limits) if limits else None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["rendered"], data["returns"] = list(self.rendered), list(self.returns)
        data["poll"] = self.poll.to_dict() if self.poll is not None else None
        data["succeeded"], data["also_push"] = list(self.succeeded), [list(pair) for pair in self.also_push]
        for name in _OPTIONAL:  # (the models of DAGs without these stay as they were)
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Integration:
        return cls(
            **{
                **data,
                "rendered": tuple(data["rendered"]),
                "returns": tuple(data["returns"]),
                "poll": Poll.from_dict(data["poll"]) if data.get("poll") else None,
                "succeeded": tuple(data.get("succeeded", ())),
                "also_push": tuple((key, path) for key, path in data.get("also_push", ())),
            }
        )
