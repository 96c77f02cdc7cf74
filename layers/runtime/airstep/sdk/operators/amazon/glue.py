"""GlueJobOperator (airflow.providers.amazon.aws.operators.glue) as Step Functions'
`glue:startJobRun.sync`: Step Functions starts the run of an existing Glue job and waits for it to
end, holding nothing; with `wait_for_completion=False`, `glue:startJobRun` returns once it started.
Either way the operator's XCom is the job run's id, as the provider returns it.

The provider creates the job when none has its name (from `script_location`, `iam_role_*`,
`create_job_kwargs`...); airstep starts runs of existing jobs only: deploying a job is the
platform's (CloudFormation, Terraform), and those arguments change nothing here, as they change
nothing in Airflow for a job that exists. Arguments that would change the job are refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airstep.integration import Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text

START = "arn:aws:states:::glue:startJobRun"
START_AND_WAIT = "arn:aws:states:::glue:startJobRun.sync"
# StartJobRun's parameters that run_job_kwargs may hold (Step Functions passes these on).
RUN_PARAMETERS = frozenset(
    {
        "JobRunQueuingEnabled",
        "JobRunId",
        "AllocatedCapacity",
        "Timeout",
        "MaxCapacity",
        "SecurityConfiguration",
        "NotificationProperty",
        "WorkerType",
        "NumberOfWorkers",
        "ExecutionClass",
    }
)


def _arguments(value: Any) -> dict[str, str]:
    """The run's arguments (`--key: value`): Glue takes strings only."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"Glue job arguments are strings; {key!r}: {item!r} is not")
    return dict(value)


def _run_parameters(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - RUN_PARAMETERS)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a parameter of Glue's StartJobRun that airstep passes on")
    return dict(value)


class GlueJobOperator(AwsOperator):
    """Runs an existing Glue job and returns its run id; waits for the run to succeed unless
    `wait_for_completion=False` (a run that fails, times out or errors fails the try)."""

    template_fields = (
        "job_name",
        "script_location",
        "script_args",
        "create_job_kwargs",
        "run_job_kwargs",
        "s3_bucket",
        "iam_role_name",
        "iam_role_arn",
    )
    fields = {
        "job_name": Field("JobName", text),
        "script_args": Field("Arguments", _arguments),
        "run_job_kwargs": Field("", _run_parameters),  # each key its own parameter
    }
    returns_value = True
    succeeded = ("SUCCEEDED",)

    def __init__(
        self,
        *,
        job_name: str = "aws_glue_default_job",
        job_desc: str = "AWS Glue Job with Airflow",
        script_location: str | None = None,
        concurrent_run_limit: int | None = None,
        script_args: dict[str, str] | None = None,
        retry_limit: int = 0,
        num_of_dpus: int | float | None = None,
        s3_bucket: str | None = None,
        iam_role_name: str | None = None,
        iam_role_arn: str | None = None,
        create_job_kwargs: dict[str, Any] | None = None,
        run_job_kwargs: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = False,
        verbose: bool = False,
        replace_script_file: bool = False,
        update_config: bool = False,
        stop_job_run_on_kill: bool = False,
        sleep_before_return: int = 0,
        job_poll_interval: int | float = 6,
        waiter_delay: int = 60,
        waiter_max_attempts: int = 75,
        resume_glue_job_on_retry: bool | None = None,
        durable: bool | None = None,
        openlineage_inject_parent_job_info: bool = False,
        openlineage_inject_transport_info: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.job_desc = job_desc
        self.script_location = script_location
        self.concurrent_run_limit = concurrent_run_limit or 1
        self.script_args = script_args or None
        self.retry_limit = retry_limit
        self.num_of_dpus = num_of_dpus
        self.s3_bucket = s3_bucket
        self.iam_role_name = iam_role_name
        self.iam_role_arn = iam_role_arn
        self.create_job_kwargs = create_job_kwargs
        self.run_job_kwargs = run_job_kwargs or None
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.verbose = verbose
        self.stop_job_run_on_kill = stop_job_run_on_kill
        self.sleep_before_return = sleep_before_return
        self.job_poll_interval = job_poll_interval
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.durable = durable if durable is not None else resume_glue_job_on_retry
        for name, value in (("update_config", update_config), ("replace_script_file", replace_script_file)):
            if value:
                self.refuse(name, "airstep runs a Glue job as deployed and never changes it")
        for name, value in (
            ("openlineage_inject_parent_job_info", openlineage_inject_parent_job_info),
            ("openlineage_inject_transport_info", openlineage_inject_transport_info),
        ):
            if value:
                self.refuse(name, "airstep sends no OpenLineage events")

    def call_resource(self) -> str:
        return START_AND_WAIT if self.waits() else START

    def call_returns(self) -> tuple[str, ...]:
        return ("Id",) if self.waits() else ("JobRunId",)  # a JobRun once ended; StartJobRun's answer

    def ended_key(self) -> str:
        return "JobRunState" if self.waits() else ""  # the provider fails a run that did not succeed

    def also_push(self) -> tuple[tuple[str, str], ...]:
        return (("glue_job_run_id", self.call_returns()[0]),)

    def waits(self) -> bool:
        return self.wait_for_completion or self.deferrable

    def wait_seconds(self) -> float | None:
        # deferred, the provider gives up after its waiter's attempts; polling, it waits until the run ends
        return float(self.waiter_max_attempts * self.waiter_delay) if self.deferrable else None

    def grants(self) -> tuple[Grant, ...]:
        actions = ["glue:StartJobRun"]
        if self.waits():  # what Step Functions' .sync needs to watch the run (and stop it when the task stops)
            actions += ["glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
        return (Grant(tuple(actions), (arn("glue", f"job/{self.named(self.job_name)}"),)),)
