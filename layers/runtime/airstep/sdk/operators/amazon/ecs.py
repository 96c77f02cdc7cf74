"""EcsRunTaskOperator (airflow.providers.amazon.aws.operators.ecs) as Step Functions'
`ecs:runTask.sync`: Step Functions runs the task and waits for it to stop, holding nothing while it
runs (`wait_for_completion=False`: `ecs:runTask`, which returns once the task is started). A
container that exits with a code other than 0 fails the try (one in `skip_on_exit_code` skips the
task), as the provider does; XCom `ecs_task_arn` is the task's ARN."""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from airstep.integration import Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text
from airstep.sdk.operators.amazon.shapes import request_member

RUN = "arn:aws:states:::ecs:runTask"
RUN_AND_WAIT = "arn:aws:states:::ecs:runTask.sync"
SYNC_RULE = arn("events", "rule/StepFunctionsGetEventsForECSTaskRule")


def _tags(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict of tags, got {type(value).__name__}")
    return [{"Key": str(key), "Value": str(item)} for key, item in value.items()]


class EcsRunTaskOperator(AwsOperator):
    """Runs a task of an existing ECS task definition and, unless `wait_for_completion=False`, waits
    for it to stop; a container that exited with a code other than 0 fails the try."""

    template_fields = (
        "task_definition",
        "cluster",
        "overrides",
        "launch_type",
        "capacity_provider_strategy",
        "volume_configurations",
        "group",
        "placement_constraints",
        "placement_strategy",
        "platform_version",
        "network_configuration",
        "tags",
    )
    fields = {
        "cluster": Field("Cluster", text),
        "task_definition": Field("TaskDefinition", text),
        "overrides": Field("Overrides", request_member("ecs", "RunTask", "overrides")),
        "launch_type": Field("LaunchType", text),
        "capacity_provider_strategy": Field(
            "CapacityProviderStrategy", request_member("ecs", "RunTask", "capacityProviderStrategy")
        ),
        "volume_configurations": Field(
            "VolumeConfigurations", request_member("ecs", "RunTask", "volumeConfigurations")
        ),
        "group": Field("Group", text),
        "placement_constraints": Field(
            "PlacementConstraints", request_member("ecs", "RunTask", "placementConstraints")
        ),
        "placement_strategy": Field("PlacementStrategy", request_member("ecs", "RunTask", "placementStrategy")),
        "platform_version": Field("PlatformVersion", text),
        "network_configuration": Field(
            "NetworkConfiguration", request_member("ecs", "RunTask", "networkConfiguration")
        ),
        "tags": Field("Tags", _tags),
        "propagate_tags": Field("PropagateTags", text),
    }
    pushes = False  # the provider returns the task's last log line only when it fetched its logs
    succeeded = (0,)

    def __init__(
        self,
        *,
        task_definition: str,
        cluster: str,
        overrides: dict[str, Any],
        launch_type: str = "EC2",
        capacity_provider_strategy: list[Any] | None = None,
        volume_configurations: list[Any] | None = None,
        group: str | None = None,
        placement_constraints: list[Any] | None = None,
        placement_strategy: list[Any] | None = None,
        platform_version: str | None = None,
        network_configuration: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        awslogs_group: str | None = None,
        awslogs_region: str | None = None,
        awslogs_stream_prefix: str | None = None,
        awslogs_fetch_interval: Any = None,
        container_name: str | None = None,
        propagate_tags: str | None = None,
        quota_retry: dict[str, Any] | None = None,
        reattach: bool = False,
        number_logs_exception: int = 10,
        wait_for_completion: bool = True,
        waiter_delay: int = 6,
        waiter_max_attempts: int = 1000000,
        deferrable: bool = False,
        skip_on_exit_code: int | Container[int] | None = None,
        stop_task_on_failure: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.task_definition = task_definition
        self.cluster = cluster
        self.overrides = overrides
        # the provider sends a launch type only without a capacity provider strategy
        self.launch_type = launch_type if launch_type and not capacity_provider_strategy else None
        self.capacity_provider_strategy = capacity_provider_strategy or None
        self.volume_configurations = volume_configurations
        self.group = group
        self.placement_constraints = placement_constraints
        self.placement_strategy = placement_strategy
        self.platform_version = platform_version
        self.network_configuration = network_configuration
        self.tags = tags
        self.awslogs_group = awslogs_group
        self.awslogs_region = awslogs_region
        self.awslogs_stream_prefix = awslogs_stream_prefix
        self.awslogs_fetch_interval = awslogs_fetch_interval
        self.container_name = container_name
        self.propagate_tags = propagate_tags
        self.reattach = reattach
        self.number_logs_exception = number_logs_exception
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.deferrable = deferrable
        codes = [skip_on_exit_code] if isinstance(skip_on_exit_code, int) else list(skip_on_exit_code or [])
        self.skip_on_exit_code = codes
        self.stop_task_on_failure = stop_task_on_failure
        if not self.waits():  # the provider raises for a task ECS could not place; Step Functions does not
            self.errors = "Failures"  # type: ignore[misc]

    def waits(self) -> bool:
        return self.wait_for_completion or self.deferrable

    def call_resource(self) -> str:
        return RUN_AND_WAIT if self.waits() else RUN

    def ended_key(self) -> str:
        return "Containers[*].ExitCode" if self.waits() else ""  # (the stopped task, as .sync answers it)

    def skipped_ends(self) -> tuple[Any, ...]:
        return tuple(self.skip_on_exit_code)

    def reason_key(self) -> str:
        return "StoppedReason"

    def also_push(self) -> tuple[tuple[str, str], ...]:
        if not self.do_xcom_push:  # (the provider pushes it only then)
            return ()
        return (("ecs_task_arn", "TaskArn" if self.waits() else "Tasks[0].TaskArn"),)

    def wait_seconds(self) -> float | None:
        return float(self.waiter_max_attempts * self.waiter_delay) if self.deferrable else None

    def grants(self) -> tuple[Grant, ...]:
        family = self.named(self.task_definition)
        if family.startswith("arn:"):  # arn:...:task-definition/family:revision
            definition = family
        else:
            definition = arn("ecs", f"task-definition/{family}" + ("" if ":" in family else ":*"))
        cluster = self.named(self.cluster).rsplit("/", 1)[-1]
        grants = [
            Grant(("ecs:RunTask",), (definition,)),
            *([Grant(("ecs:TagResource",), (arn("ecs", f"task/{cluster}/*"),))] if self.tags else []),
            # the task definition's task and execution roles, handed to ECS (named only in the definition)
            Grant(("iam:PassRole",), (arn("iam", "role/*", region=""),)),
        ]
        if self.waits():  # Step Functions watches (and on a timeout stops) the task through its own rule
            grants.append(Grant(("ecs:DescribeTasks", "ecs:StopTask"), (arn("ecs", f"task/{cluster}/*"),)))
            grants.append(Grant(("events:PutTargets", "events:PutRule", "events:DescribeRule"), (SYNC_RULE,)))
        return tuple(grants)
