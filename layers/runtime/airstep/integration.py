"""Integration: a task of the graph model that an AWS operator runs as a Step Functions service
integration (airstep.sdk.operators.amazon builds it, the compiler emits it, the task runner ends it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Poll:
    """For a service with no `.sync` integration (a Glue crawler), or a sensor standing alone: the
    describe call Step Functions makes after the start call (`describes_first`: the call is itself
    the first describe, a sensor's first poke), again every `interval_seconds` while the value at
    `status` (a dotted path in its response, `Contents[0].Key` indexes a list) is one of `running`
    (or, with `until`, until it equals the value of that call parameter), at most `max_polls` times.
    It passes on the call's `parameters` named. Once the work ended, the value at `failure` being one
    of `failed` fails the try as `failed_as`, with the value at `message`. Still waiting after the
    last check fails it as `timeout_as` (a waiter's `WaiterError`, a sensor's `AirflowSensorTimeout`,
    which no retry repeats). `skip_timeout` (a sensor's soft_fail or never_fail): a timeout skips the
    task instead; `skip_failed` (never_fail): so does a failed end. `running` and `until` empty: one
    describe call, no wait (the operator does not wait; the describe call gives its XCom). A
    `parameters` entry `ClusterId=JobFlowId` passes the call's JobFlowId as ClusterId."""

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
    until: str = ""
    until_prefix: bool = False  # ... or until it starts with that value (a listing by a prefix)
    describes_first: bool = False
    timeout_as: str = "WaiterError"
    skip_timeout: bool = False
    skip_failed: bool = False
    # describe parameters read from the last answer: `Id`, or `JobRunId=JobRun.JobRunId` (name=path)
    from_answer: tuple[str, ...] = ()
    # the start call's answer is kept under this key, as the describe call answers it (or, `Cluster.Id=JobFlowId`,
    # one of its values where the describe call answers that)
    nest_start: str = ""
    # Waiting for each of a list in turn (EMR's steps): the list's path in the start's answer, the describe
    # parameter that takes each item, and the states in which an item ended well (then the next is described).
    # The start's answer stays; the describe calls' answers are under `described` beside it.
    each: str = ""
    each_parameter: str = ""
    each_done: tuple[str, ...] = ()

    @property
    def waits(self) -> bool:
        """Whether the checks go on while the work runs (else one describe call)."""
        return bool(self.running or self.until)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}
        return _without_defaults(self, data, _POLL_OPTIONAL)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Poll:
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


# left out of a model at their default: the models of DAGs without them stay as they were
_POLL_OPTIONAL = (
    "until",
    "until_prefix",
    "describes_first",
    "timeout_as",
    "skip_timeout",
    "skip_failed",
    "from_answer",
    "nest_start",
    "each",
    "each_parameter",
    "each_done",
)


def _without_defaults(instance: Any, data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """`data` (`instance`'s fields as JSON) without those of `names` that are at their default."""
    for field in fields(instance):
        if field.name in names and data[field.name] == (
            list(field.default) if isinstance(field.default, tuple) else field.default
        ):
            del data[field.name]
    return data


def at_path(data: Any, path: str) -> Any:
    """The value at a dotted path (`Crawler.LastCrawl.Status`, `Contents[0].Key`) of a response, or
    None; `SubStatements[*].Id` is the list of each item's value."""
    parts = path.split(".") if path else []
    for at, part in enumerate(parts):
        key, bracket, index = part.partition("[")
        if not isinstance(data, dict):
            return None
        data = data.get(key)
        if not bracket:
            continue
        if not isinstance(data, list):
            return None
        if index == "*]":
            rest = ".".join(parts[at + 1 :])
            return [at_path(item, rest) for item in data]
        position = int(index.rstrip("]"))
        if not -len(data) <= position < len(data):
            return None
        data = data[position]
    return data


# In a Grant's resources: filled in by the compile function for its environment.
PARTITION, REGION, ACCOUNT = "${Partition}", "${Region}", "${Account}"


@dataclass(frozen=True, slots=True)
class Grant:
    """IAM actions a task's calls need (Step Functions makes them with the DAG's role), on resources
    named by ARN (with `${Partition}`, `${Region}` and `${Account}` for the environment's; a `*`
    where a name is a template, known only when the try begins)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"actions": list(self.actions), "resources": list(self.resources)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        return cls(tuple(data["actions"]), tuple(data["resources"]))


def arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """An ARN in the environment's partition (its region and account unless given)."""
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


_OPTIONAL = (  # left out of a model at their default, as those of a Poll
    "poll",
    "errors",
    "ended",
    "succeeded",
    "also_push",
    "grants",
    "returns_list",
    "skip_on",
    "reason",
)


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
    XComs the operator pushes besides its return value (Glue's `glue_job_run_id`). `grants`: the
    IAM actions and resources the calls need, from which the compiler writes the DAG's policy."""

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
    succeeded: tuple[Any, ...] = ()  # ... the states that are a success: any other fails the try
    also_push: tuple[tuple[str, str], ...] = ()  # (XCom key, response key): pushed besides the return value
    grants: tuple[Grant, ...] = ()  # what the DAG's role must allow for the calls
    returns_list: bool = False  # the XCom is a list: the value (or a list of values) at `returns[0]`
    skip_on: tuple[Any, ...] = ()  # ... the end states that skip the task instead (ECS's skip_on_exit_code)
    reason: str = ""  # the response's key saying why the work ended as it did (shown when that fails the try)

    def time_limit(self, execution_timeout: float | None) -> float | None:
        """The call's time limit: the task's execution_timeout, or sooner the operator's own wait."""
        limits = [limit for limit in (execution_timeout, self.wait_seconds) if limit is not None]
        return min(limits) if limits else None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["rendered"], data["returns"] = list(self.rendered), list(self.returns)
        data["poll"] = self.poll.to_dict() if self.poll is not None else None
        data["succeeded"], data["also_push"] = list(self.succeeded), [list(pair) for pair in self.also_push]
        data["grants"] = [grant.to_dict() for grant in self.grants]
        data["skip_on"] = list(self.skip_on)
        return _without_defaults(self, data, _OPTIONAL)

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
                "grants": tuple(Grant.from_dict(grant) for grant in data.get("grants", ())),
                "skip_on": tuple(data.get("skip_on", ())),
            }
        )
