"""The amazon provider's sensors standing alone (airflow.providers.amazon.aws.sensors.*) as describe
calls that Step Functions makes every `poke_interval` seconds, with Wait states between: no Lambda
pokes and no compute is held while the sensor waits, deferrable or not.

A poke is one describe call (`S3KeySensor`: S3's ListObjectsV2 by the key; `GlueJobSensor`: Glue's
GetJobRun; `AthenaSensor`: Athena's GetQueryExecution; `BatchSensor`: Batch's DescribeJobs;
`EmrStepSensor`: EMR's DescribeStep). Still
waiting at the sensor's `timeout` is `AirflowSensorTimeout`, which ends the task without a retry
(`soft_fail` or `never_fail`: skipped), as in Airflow; a failed end of the work watched fails the
try as the provider raises (`never_fail`: skipped). The checks of a long wait share a quarter of
the run's history with the other waiting tasks: when they would not fit, half of those that fit
come at the sensor's interval and the rest further apart (the same timeout, fewer checks)."""

from __future__ import annotations

import re
from typing import Any

from airstep.integration import Grant, Poll, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text
from airstep.sdk.operators.amazon.s3 import bucket_and_key, bucket_arn
from airstep.sdk.sensors import BaseSensorOperator

SENSOR_TIMEOUT = "AirflowSensorTimeout"
LIST_OBJECTS = "arn:aws:states:::aws-sdk:s3:listObjectsV2"
GET_JOB_RUN = "arn:aws:states:::aws-sdk:glue:getJobRun"
GET_QUERY_EXECUTION = "arn:aws:states:::aws-sdk:athena:getQueryExecution"
DESCRIBE_JOBS = "arn:aws:states:::aws-sdk:batch:describeJobs"
DESCRIBE_STEP = "arn:aws:states:::aws-sdk:emr:describeStep"
_WILDCARDS = re.compile(r"[\[*?]")


class AwsSensor(AwsOperator, BaseSensorOperator):
    """Base of the provider's sensors airstep translates: BaseSensorOperator's arguments, each poke a
    describe call of the state machine's. Subclasses give the describe call (`resource`, `fields`)
    and how its answer reads (`poll`)."""

    pushes = False  # a sensor's execute returns None
    trigger_attempts: int | None = None  # deferred, the provider's trigger gives up after this many checks

    def __init__(self, *, deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        if self.silent_fail:
            self.refuse("silent_fail", "a failed check ends the try; it is not poked again")

    def checks(self) -> int:
        """How many pokes the sensor makes: one at once, then one every poke_interval (in whole
        seconds, as Step Functions waits) until its timeout, or deferred, until its trigger gives up."""
        return min(self._timeout_checks(), self._trigger_checks())

    def _timeout_checks(self) -> int:
        return int(self.timeout // self.interval()) + 1

    def _trigger_checks(self) -> int:
        if self.deferrable and self.trigger_attempts is not None:
            return int(self.trigger_attempts)
        return self._timeout_checks()

    def interval(self) -> int:
        return max(1, round(self.poke_interval))

    def sensor_poll(self, **reading: Any) -> Poll:
        """The describe calls of the sensor's pokes, reading the answer as `reading` says."""
        parameters = {*self.call_constants, *(field.parameter.split(".")[0] for field in self.fields.values())}
        sensing: dict[str, Any] = {
            "resource": self.resource,
            "parameters": tuple(sorted(parameters)),
            "interval_seconds": self.interval(),
            "max_polls": self.checks(),
            "describes_first": True,
            # the trigger giving up first is its failure event: an AirflowException, as the provider raises
            "timeout_as": "AirflowException" if self._trigger_checks() < self._timeout_checks() else SENSOR_TIMEOUT,
            "skip_timeout": self.soft_fail or self.never_fail,
            "skip_failed": self.never_fail,
        }
        return Poll(**{**sensing, **reading})


class S3KeySensor(AwsSensor):
    """Waits for a key in a bucket (a full `s3://` URL, or a key and `bucket_name`); with
    `wildcard_match`, for any key matching a pattern that ends in its only `*` (a prefix)."""

    template_fields = ("bucket_key", "bucket_name")
    resource = LIST_OBJECTS
    fields = {"bucket_name": Field("Bucket", text), "bucket_key": Field("Prefix", text)}
    constants = {"MaxKeys": 1}  # a listing by the key answers the key itself first, when it exists

    def __init__(
        self,
        *,
        bucket_key: str | list[str],
        bucket_name: str | None = None,
        wildcard_match: bool = False,
        check_fn: Any = None,
        use_regex: bool = False,
        metadata_keys: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wildcard_match = wildcard_match
        self.check_fn = check_fn
        self.use_regex = use_regex
        self.metadata_keys = metadata_keys
        keys = bucket_key if isinstance(bucket_key, (list, tuple)) else [bucket_key]
        if len(keys) != 1:
            self.refuse("bucket_key", f"{len(keys)} keys: give one (one S3KeySensor per key waits for several)")
        if check_fn is not None:
            self.refuse("check_fn", "the state machine checks that the key exists; it runs no code of the DAG's")
        if use_regex:
            self.refuse("use_regex", "only a key, or a pattern whose one wildcard is a trailing `*`, is translated")
        bucket, key = bucket_and_key(self, keys[0], bucket_name, "bucket_key", "bucket_name")
        if wildcard_match and not isinstance(key, str):
            self.refuse("wildcard_match", "the pattern must be written in the DAG, not come from an upstream task")
        if wildcard_match:
            prefix = _WILDCARDS.split(key, maxsplit=1)[0]
            if key != prefix + "*":
                self.refuse(
                    "wildcard_match",
                    f"{key!r}: only a pattern whose one wildcard is a trailing `*` (a prefix) is translated",
                )
            key = prefix
        self.bucket_name, self.bucket_key = bucket, key

    def grants(self) -> tuple[Grant, ...]:
        return (Grant(("s3:ListBucket",), (bucket_arn(self.named(self.bucket_name)),)),)

    def integration_poll(self) -> Poll:
        # done once the first key listed by the key is the key (or, a prefix, once any key is listed)
        return self.sensor_poll(status="Contents[0].Key", until="Prefix", until_prefix=self.wildcard_match)


class GlueJobSensor(AwsSensor):
    """Waits for a Glue job run to succeed; a run that ends FAILED, STOPPED or TIMEOUT fails the try."""

    template_fields = ("job_name", "run_id")
    resource = GET_JOB_RUN
    fields = {"job_name": Field("JobName", text), "run_id": Field("RunId", text)}
    # the provider's: its poke goes on for any other state (ERROR, EXPIRED too)
    SUCCESS_STATES = ("SUCCEEDED",)
    FAILURE_STATES = ("FAILED", "STOPPED", "TIMEOUT")
    _RUNNING = ("STARTING", "RUNNING", "STOPPING", "WAITING", "ERROR", "EXPIRED")

    def __init__(
        self,
        *,
        job_name: str,
        run_id: str,
        verbose: bool = False,
        poke_interval: float = 120,
        max_retries: int = 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.job_name = job_name
        self.run_id = run_id
        self.verbose = verbose
        self.max_retries = max_retries
        self.trigger_attempts = max_retries

    def grants(self) -> tuple[Grant, ...]:
        return (Grant(("glue:GetJobRun",), (arn("glue", f"job/{self.named(self.job_name)}"),)),)

    def integration_poll(self) -> Poll:
        return self.sensor_poll(
            status="JobRun.JobRunState",
            running=self._RUNNING,
            failure="JobRun.JobRunState",
            failed=self.FAILURE_STATES,
            message="JobRun.ErrorMessage",
            failed_as="AirflowException",
        )


class AthenaSensor(AwsSensor):
    """Waits for an Athena query to end; a query that ends FAILED or CANCELLED fails the try. The
    provider's poke itself checks every `sleep_time` seconds (up to `max_retries` times), so here the
    checks come `sleep_time` apart until the sensor's timeout."""

    template_fields = ("query_execution_id",)
    resource = GET_QUERY_EXECUTION
    fields = {"query_execution_id": Field("QueryExecutionId", text)}
    INTERMEDIATE_STATES = ("QUEUED", "RUNNING")
    FAILURE_STATES = ("FAILED", "CANCELLED")
    SUCCESS_STATES = ("SUCCEEDED",)

    def __init__(
        self, *, query_execution_id: str, max_retries: int | None = None, sleep_time: int = 10, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.query_execution_id = query_execution_id
        self.max_retries = max_retries
        self.sleep_time = sleep_time
        if isinstance(sleep_time, bool) or not isinstance(sleep_time, int) or sleep_time < 1:
            self.refuse("sleep_time", f"expected at least 1 second, got {sleep_time!r}")

    def interval(self) -> int:
        return int(self.sleep_time)

    def grants(self) -> tuple[Grant, ...]:
        # the query's workgroup is known only from its execution id
        return (Grant(("athena:GetQueryExecution",), (arn("athena", "workgroup/*"),)),)

    def integration_poll(self) -> Poll:
        return self.sensor_poll(
            status="QueryExecution.Status.State",
            running=self.INTERMEDIATE_STATES,
            failure="QueryExecution.Status.State",
            failed=self.FAILURE_STATES,
            message="QueryExecution.Status.StateChangeReason",
            failed_as="AirflowException",
        )


class BatchSensor(AwsSensor):
    """Waits for a Batch job to end; a job that ends FAILED fails the try. Deferred, the provider's
    trigger gives up after `max_retries` checks."""

    template_fields = ("job_id",)
    resource = DESCRIBE_JOBS
    fields = {"job_id": Field("Jobs", lambda value: [text(value)])}
    INTERMEDIATE_STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")

    def __init__(self, *, job_id: str, poke_interval: float = 30, max_retries: int = 4200, **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.job_id = job_id
        self.max_retries = max_retries
        self.trigger_attempts = max_retries

    def grants(self) -> tuple[Grant, ...]:
        return (Grant(("batch:DescribeJobs",), ("*",)),)  # (DescribeJobs takes no resource)

    def integration_poll(self) -> Poll:
        return self.sensor_poll(
            status="Jobs[0].Status",
            running=self.INTERMEDIATE_STATES,
            failure="Jobs[0].Status",
            failed=("FAILED",),
            message="Jobs[0].StatusReason",
            failed_as="AirflowException",
        )


class EmrStepSensor(AwsSensor):
    """Waits for an EMR step to reach one of `target_states` (COMPLETED); one of `failed_states`
    (CANCELLED, FAILED, INTERRUPTED) fails the try. Deferred, the provider's trigger gives up after
    `max_attempts` checks."""

    template_fields = ("job_flow_id", "step_id", "target_states", "failed_states")
    resource = DESCRIBE_STEP
    fields = {"job_flow_id": Field("ClusterId", text), "step_id": Field("StepId", text)}
    STATES = ("PENDING", "CANCEL_PENDING", "RUNNING", "COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")

    def __init__(
        self,
        *,
        job_flow_id: str,
        step_id: str,
        target_states: list[str] | None = None,
        failed_states: list[str] | None = None,
        max_attempts: int = 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_flow_id = job_flow_id
        self.step_id = step_id
        self.target_states = list(target_states or ["COMPLETED"])
        self.failed_states = list(failed_states or ["CANCELLED", "FAILED", "INTERRUPTED"])
        self.max_attempts = max_attempts
        self.trigger_attempts = max_attempts
        for name in ("target_states", "failed_states"):
            states = getattr(self, name)
            if self._holds_template(states) or not all(isinstance(s, str) and s in self.STATES for s in states):
                self.refuse(name, f"expected step states known when the DAG compiles ({', '.join(self.STATES)})")

    def grants(self) -> tuple[Grant, ...]:
        return (
            Grant(
                ("elasticmapreduce:DescribeStep",),
                (arn("elasticmapreduce", f"cluster/{self.named(self.job_flow_id)}"),),
            ),
        )

    def integration_poll(self) -> Poll:
        ends = {*self.target_states, *self.failed_states}
        return self.sensor_poll(
            status="Step.Status.State",
            running=tuple(state for state in self.STATES if state not in ends),
            failure="Step.Status.State",
            failed=tuple(self.failed_states),
            message="Step.Status.FailureDetails.Message",
            failed_as="AirflowException",
        )
