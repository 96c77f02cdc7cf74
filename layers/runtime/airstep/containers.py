"""Tasks whose tries run in ECS Fargate (the amazon provider's ECS executor): what the compiler,
the task runner and the container agree on.

Such a try is a service integration like an AWS operator's: the run step (the task runner) begins
the try and hands its request to the XCom bucket (`handoff/.../request.json`); Step Functions runs
the environment's runner task definition with `ecs:runTask.sync`, its container running the same
executor code as the Lambda executor (`python -m airstep.runtime.container`), which writes the
try's result beside the request (`result.json`); the record step ends the try with it. Nothing of
ours runs while the container works, and the try has no limit but its execution_timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airstep.integration import Integration

RUN_AND_WAIT = "arn:aws:states:::ecs:runTask.sync"
OPERATOR = "AwsEcsExecutor"
CONTAINER_NAME = "task"  # the runner task definition's one container (template.yaml)
TRY_REQUEST_ENV = "AIRSTEP_TRY_REQUEST"  # the s3:// URI of the try's request
REQUEST_OBJECT, RESULT_OBJECT = "request.json", "result.json"
# Before the try's code starts: Fargate places the task, pulls the image, the container the runtime
# bundle. The call's time limit is the try's execution_timeout plus this.
START_SECONDS = 600
NO_LIMIT_SECONDS = 365 * 24 * 3600.0  # a try without execution_timeout: a Standard execution's lifetime


@dataclass(frozen=True, slots=True)
class ContainerPolicy:
    """A task whose tries run in an ECS Fargate task (the amazon provider's ECS executor), not in
    Lambda: the task's CPU units and memory (MiB)."""

    cpu: int
    memory: int

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "memory": self.memory}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerPolicy:
        return cls(int(data["cpu"]), int(data["memory"]))


@dataclass(frozen=True, slots=True)
class ContainerTarget:
    """Where an environment runs container tries: its ECS cluster, the runner task definition, and
    the network a Fargate task needs (subnets, security groups, a public IP to reach AWS's APIs
    and the image registry without a NAT gateway)."""

    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...] = ()
    public_ip: bool = True

    def integration(self) -> Integration:
        """The call that runs a try: `Overrides` (the request's URI, the task's size) is the run step's."""
        network: dict[str, Any] = {
            "Subnets": list(self.subnets),
            "AssignPublicIp": "ENABLED" if self.public_ip else "DISABLED",
        }
        if self.security_groups:
            network["SecurityGroups"] = list(self.security_groups)
        return Integration(
            operator=OPERATOR,
            resource=RUN_AND_WAIT,
            parameters={
                "Cluster": self.cluster,
                "LaunchType": "FARGATE",
                "NetworkConfiguration": {"AwsvpcConfiguration": network},
                "TaskDefinition": self.task_definition,
            },
            rendered=("Overrides",),
            push=False,
            prepare=True,
        )


def overrides(policy: ContainerPolicy, request_uri: str) -> dict[str, Any]:
    """The RunTask `Overrides` of a try: the task's size, and where its request is."""
    return {
        "Cpu": str(policy.cpu),
        "Memory": str(policy.memory),
        "ContainerOverrides": [
            {"Name": CONTAINER_NAME, "Environment": [{"Name": TRY_REQUEST_ENV, "Value": request_uri}]}
        ],
    }


def request_uri_of(call: dict[str, Any]) -> str | None:
    """The request's URI in a try's call parameters (`overrides`), or None."""
    try:
        environment = call["Overrides"]["ContainerOverrides"][0]["Environment"]
    except (KeyError, IndexError, TypeError):
        return None
    return next((item["Value"] for item in environment if item.get("Name") == TRY_REQUEST_ENV), None)


def result_uri(request_uri: str) -> str:
    """Where the container writes the try's result: beside its request."""
    return request_uri.removesuffix(REQUEST_OBJECT) + RESULT_OBJECT
