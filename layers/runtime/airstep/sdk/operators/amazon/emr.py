"""EmrServerlessStartJobOperator (airflow.providers.amazon.aws.operators.emr) as Step Functions calls:
`aws-sdk:emrserverless:startJobRun`, then `getJobRun` every `waiter_delay` seconds until the run
ends, with Wait states between (no compute is held while it runs), up to the provider's waiter
(`waiter_max_attempts`). The XCom is the job run's id, as the provider returns it; a run that ends
FAILED, CANCELLING or CANCELLED fails the try.

Why the `aws-sdk` calls and not the optimized `emr-serverless:startJobRun.sync`: the optimized
integration wraps the API in shapes of its own that could not be checked here (no AWS, and moto's
interpreter lacks it), while the `aws-sdk` calls answer as the EMR Serverless API does. A check
costs about 11 history events, which `.sync` would not."""

from __future__ import annotations

from typing import Any

from airstep.integration import Grant, Poll, arn
from airstep.sdk.operators.amazon.base import SPREAD, AwsOperator, Field, text
from airstep.sdk.operators.amazon.shapes import request_member

START = "arn:aws:states:::aws-sdk:emrserverless:startJobRun"
DESCRIBE = "arn:aws:states:::aws-sdk:emrserverless:getJobRun"
INTERMEDIATE_STATES = ("PENDING", "RUNNING", "SCHEDULED", "SUBMITTED", "QUEUED")
FAILURE_STATES = ("FAILED", "CANCELLING", "CANCELLED")


class EmrServerlessStartJobOperator(AwsOperator):
    """Starts a job run on an existing EMR Serverless application and, unless
    `wait_for_completion=False`, waits for it to succeed; returns the job run's id."""

    template_fields = (
        "application_id",
        "config",
        "execution_role_arn",
        "job_driver",
        "configuration_overrides",
        "name",
    )
    resource = START
    fields = {
        "application_id": Field("ApplicationId", text),
        "execution_role_arn": Field("ExecutionRoleArn", text),
        "job_driver": Field("JobDriver", request_member("emr-serverless", "StartJobRun", "jobDriver")),
        "configuration_overrides": Field(
            "ConfigurationOverrides", request_member("emr-serverless", "StartJobRun", "configurationOverrides")
        ),
        "name": Field("Name", text),
        "client_request_token": Field("ClientToken", text),
        # StartJobRun's other parameters (tags, executionTimeoutMinutes)
        "config": Field(SPREAD, request_member("emr-serverless", "StartJobRun")),
    }
    returns = ("JobRun.JobRunId",)
    returns_value = True

    def __init__(
        self,
        *,
        application_id: str,
        execution_role_arn: str,
        job_driver: dict[str, Any],
        configuration_overrides: dict[str, Any] | None = None,
        client_request_token: str = "",
        config: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        name: str | None = None,
        waiter_max_attempts: int | None = None,
        waiter_delay: int | None = None,
        deferrable: bool = False,
        enable_application_ui_links: bool = False,
        cancel_on_kill: bool = True,
        openlineage_inject_parent_job_info: bool = False,
        openlineage_inject_transport_info: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application_id = application_id
        self.execution_role_arn = execution_role_arn
        self.job_driver = job_driver
        self.configuration_overrides = configuration_overrides
        self.client_request_token = client_request_token or None
        self.config = config or None
        self.wait_for_completion = wait_for_completion
        self.name = name
        self.waiter_max_attempts = 25 if waiter_max_attempts is None else int(waiter_max_attempts)
        self.waiter_delay = 60 if waiter_delay is None else int(waiter_delay)
        self.deferrable = deferrable
        self.enable_application_ui_links = enable_application_ui_links
        self.cancel_on_kill = cancel_on_kill
        if self.client_request_token is None:  # the provider's token is a fresh UUID too
            self.call_constants = {"ClientToken.$": "States.UUID()"}
        for flag, value in (
            ("openlineage_inject_parent_job_info", openlineage_inject_parent_job_info),
            ("openlineage_inject_transport_info", openlineage_inject_transport_info),
        ):
            if value:
                self.refuse(flag, "airstep sends no OpenLineage events")

    def integration_poll(self) -> Poll:
        waits = self.wait_for_completion
        return Poll(
            resource=DESCRIBE,
            parameters=("ApplicationId",),
            from_answer=("JobRunId=JobRun.JobRunId",),
            nest_start="JobRun",  # (StartJobRun answers the ids GetJobRun answers under JobRun)
            status="JobRun.State",
            running=INTERMEDIATE_STATES if waits else (),
            failure="JobRun.State" if waits else "",
            failed=FAILURE_STATES if waits else (),
            message="JobRun.StateDetails",
            interval_seconds=max(1, self.waiter_delay),
            max_polls=self.waiter_max_attempts if waits else 1,
            failed_as="AirflowException",
            timeout_as="AirflowException",
        )

    def wait_seconds(self) -> float | None:
        return float(self.waiter_max_attempts * self.waiter_delay) if self.wait_for_completion else None

    def grants(self) -> tuple[Grant, ...]:
        application = arn("emr-serverless", f"/applications/{self.named(self.application_id)}")
        runs = f"{application}/jobruns/*"
        grants = [
            Grant(("emr-serverless:StartJobRun",), (application,)),
            Grant(("emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"), (runs,)),
            # the run's role, handed to EMR Serverless
            Grant(("iam:PassRole",), (self.named(self.execution_role_arn),)),
        ]
        if self.config and "tags" in self.config:
            grants.append(Grant(("emr-serverless:TagResource",), (runs,)))
        return tuple(grants)
