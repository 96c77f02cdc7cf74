"""BatchOperator (airflow.providers.amazon.aws.operators.batch) as Step Functions'
`batch:submitJob.sync`: Step Functions submits the job and waits for it to end, holding nothing
while it runs (`wait_for_completion=False`: `batch:submitJob`, which returns once it is submitted).
The XCom is the job's id, as the provider returns it; a job that ends FAILED fails the try with
Batch's reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airstep.integration import Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text, whole_number
from airstep.sdk.operators.amazon.shapes import request_member

SUBMIT = "arn:aws:states:::batch:submitJob"
SUBMIT_AND_WAIT = "arn:aws:states:::batch:submitJob.sync"
SYNC_RULE = arn("events", "rule/StepFunctionsGetEventsForBatchJobsRule")


def _strings(value: Any) -> dict[str, str]:
    """A map of the user's own keys (a job's parameters, its tags): passed as given."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    return {str(key): str(item) for key, item in value.items()}


def _timeout(value: Any) -> dict[str, int]:
    return {"AttemptDurationSeconds": whole_number(value)}


class BatchOperator(AwsOperator):
    """Submits a job to an AWS Batch job queue and, unless `wait_for_completion=False`, waits for it
    to end; returns the job's id."""

    template_fields = (
        "job_name",
        "job_definition",
        "job_queue",
        "container_overrides",
        "array_properties",
        "ecs_properties_override",
        "eks_properties_override",
        "node_overrides",
        "parameters",
        "retry_strategy",
        "tags",
    )
    template_fields_renderers = {"container_overrides": "json", "parameters": "json"}
    fields = {
        "job_name": Field("JobName", text),
        "job_queue": Field("JobQueue", text),
        "job_definition": Field("JobDefinition", text),
        "array_properties": Field("ArrayProperties", request_member("batch", "SubmitJob", "arrayProperties")),
        "parameters": Field("Parameters", _strings),
        "tags": Field("Tags", _strings),
        "container_overrides": Field("ContainerOverrides", request_member("batch", "SubmitJob", "containerOverrides")),
        "ecs_properties_override": Field(
            "EcsPropertiesOverride", request_member("batch", "SubmitJob", "ecsPropertiesOverride")
        ),
        "eks_properties_override": Field(
            "EksPropertiesOverride", request_member("batch", "SubmitJob", "eksPropertiesOverride")
        ),
        "node_overrides": Field("NodeOverrides", request_member("batch", "SubmitJob", "nodeOverrides")),
        "retry_strategy": Field("RetryStrategy", request_member("batch", "SubmitJob", "retryStrategy")),
        "share_identifier": Field("ShareIdentifier", text),
        "scheduling_priority_override": Field("SchedulingPriorityOverride", whole_number),
        "submit_job_timeout": Field("Timeout", _timeout),
    }
    returns = ("JobId",)
    returns_value = True

    def __init__(
        self,
        *,
        job_name: str,
        job_definition: str,
        job_queue: str,
        container_overrides: dict[str, Any] | None = None,
        array_properties: dict[str, Any] | None = None,
        ecs_properties_override: dict[str, Any] | None = None,
        eks_properties_override: dict[str, Any] | None = None,
        node_overrides: dict[str, Any] | None = None,
        share_identifier: str | None = None,
        scheduling_priority_override: int | None = None,
        parameters: dict[str, Any] | None = None,
        retry_strategy: dict[str, Any] | None = None,
        job_id: str | None = None,
        waiters: Any = None,
        max_retries: int = 4200,
        status_retries: int | None = None,
        tags: dict[str, str] | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = False,
        poll_interval: int = 30,
        awslogs_enabled: bool = False,
        awslogs_fetch_interval: Any = None,
        submit_job_timeout: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.job_definition = job_definition
        self.job_queue = job_queue
        self.container_overrides = container_overrides
        self.array_properties = array_properties
        self.ecs_properties_override = ecs_properties_override
        self.eks_properties_override = eks_properties_override
        self.node_overrides = node_overrides
        self.share_identifier = share_identifier
        self.scheduling_priority_override = scheduling_priority_override
        self.parameters = parameters or None
        self.retry_strategy = retry_strategy
        self.job_id = job_id
        self.waiters = waiters
        self.max_retries = max_retries
        self.status_retries = status_retries
        self.tags = tags or None
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.awslogs_enabled = awslogs_enabled
        self.awslogs_fetch_interval = awslogs_fetch_interval
        self.submit_job_timeout = submit_job_timeout
        if job_id is not None:
            self.refuse("job_id", "a job submitted elsewhere is waited for with BatchSensor, not by resubmitting")
        if waiters is not None:
            self.refuse("waiters", "Step Functions waits for the job itself")

    def waits(self) -> bool:
        return self.wait_for_completion or self.deferrable

    def call_resource(self) -> str:
        return SUBMIT_AND_WAIT if self.waits() else SUBMIT

    def wait_seconds(self) -> float | None:
        # deferred, the provider's trigger gives up after max_retries checks poll_interval apart
        return float(self.max_retries * self.poll_interval) if self.deferrable else None

    def grants(self) -> tuple[Grant, ...]:
        queue = self.named(self.job_queue)
        definition = self.named(self.job_definition)
        queue_arn = queue if queue.startswith("arn:") else arn("batch", f"job-queue/{queue}")
        definition_arn = (
            definition
            if definition.startswith("arn:")
            else arn("batch", f"job-definition/{definition}" + ("" if ":" in definition else ":*"))
        )
        grants = [Grant(("batch:SubmitJob",), (queue_arn, definition_arn))]
        if self.tags:
            grants.append(Grant(("batch:TagResource",), (arn("batch", "job/*"),)))
        if self.waits():  # Step Functions watches (and on a timeout stops) the job through its own rule
            grants.append(Grant(("batch:DescribeJobs", "batch:TerminateJob"), ("*",)))
            grants.append(Grant(("events:PutTargets", "events:PutRule", "events:DescribeRule"), (SYNC_RULE,)))
        return tuple(grants)
