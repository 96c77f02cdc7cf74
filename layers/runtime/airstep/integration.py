"""Integration: a task of the graph model that an AWS operator runs as a Step Functions service
integration (airstep.sdk.operators.amazon builds it, the compiler emits it, the task runner ends it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


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
    attempts times their delay), the call's time limit unless execution_timeout is shorter."""

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

    def time_limit(self, execution_timeout: float | None) -> float | None:
        """The call's time limit: the task's execution_timeout, or sooner the operator's own wait."""
        limits = [limit for limit in (execution_timeout, self.wait_seconds) if limit is not None]
        return min(limits) if limits else None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["rendered"], data["returns"] = list(self.rendered), list(self.returns)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Integration:
        return cls(**{**data, "rendered": tuple(data["rendered"]), "returns": tuple(data["returns"])})
