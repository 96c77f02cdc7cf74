"""EMR on EC2 (airflow.providers.amazon.aws.operators.emr) as Step Functions calls of the `aws-sdk:emr`
integration, with Wait states between describe calls where the operator waits (no compute held):

- `EmrCreateJobFlowOperator`: `runJobFlow` (`job_flow_overrides` as its request); with
  `wait_for_completion` or a `wait_policy`, `describeCluster` every `waiter_delay` seconds until the
  cluster is ready (`WAIT_FOR_COMPLETION`: WAITING, RUNNING or TERMINATED) or terminated
  (`WAIT_FOR_STEPS_COMPLETION`), as the provider's waiters; TERMINATED_WITH_ERRORS fails the try.
  The XCom is the cluster's id.
- `EmrAddStepsOperator`: `addJobFlowSteps`; the XCom is the step ids (and `job_flow_id`, as the
  provider pushes it); with `wait_for_completion` (or deferred), `describeStep` of each step in turn,
  every `waiter_delay` seconds, as the provider's waiter: COMPLETED moves on to the next at once,
  CANCELLED, FAILED or INTERRUPTED fails the try.
- `EmrTerminateJobFlowOperator`: `terminateJobFlows`; deferred, `describeCluster` until TERMINATED
  (TERMINATED_WITH_ERRORS fails the try), as the provider's trigger.

Why the `aws-sdk` calls and not the optimized `elasticmapreduce:*` integrations: those take one step
per call (`addStep`) and answer in shapes of their own that could not be checked here (no AWS;
moto's interpreter lacks them), while the `aws-sdk` calls answer as the EMR API does."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from airstep.integration import Grant, Poll, arn
from airstep.sdk.operators.amazon.base import SPREAD, AwsOperator, Field, text
from airstep.sdk.operators.amazon.shapes import request_member

RUN_JOB_FLOW = "arn:aws:states:::aws-sdk:emr:runJobFlow"
ADD_STEPS = "arn:aws:states:::aws-sdk:emr:addJobFlowSteps"
TERMINATE = "arn:aws:states:::aws-sdk:emr:terminateJobFlows"
DESCRIBE_CLUSTER = "arn:aws:states:::aws-sdk:emr:describeCluster"
DESCRIBE_STEP = "arn:aws:states:::aws-sdk:emr:describeStep"
DEFAULT_EMR_CONN_ID = "emr_default"


class WaitPolicy(StrEnum):
    """How EmrCreateJobFlowOperator waits (airflow.providers.amazon.aws.utils.waiter): until the
    cluster is ready, or until it has terminated (its steps done)."""

    WAIT_FOR_COMPLETION = "wait_for_completion"
    WAIT_FOR_STEPS_COMPLETION = "wait_for_steps_completion"


WAIT_FOR_COMPLETION, WAIT_FOR_STEPS_COMPLETION = (
    WaitPolicy.WAIT_FOR_COMPLETION.value,
    WaitPolicy.WAIT_FOR_STEPS_COMPLETION.value,
)
# the provider's waiters (airflow/providers/amazon/aws/waiters/emr.json): while the cluster is ...
_STILL_STARTING = ("STARTING", "BOOTSTRAPPING", "TERMINATING")  # job_flow_waiting (TERMINATING: its end decides)
_STILL_UP = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING")  # job_flow_terminated


def _request(value: Any) -> Any:
    """A request written as a dict, or as the text of one (a template file, an XCom), as the
    provider reads it (`ast.literal_eval`; JSON too)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise ValueError("not a dict or list literal") from None
    return value


def _cluster(value: Any) -> str:
    return arn("elasticmapreduce", f"cluster/{value}")


def cluster_poll(states: tuple[str, ...], delay: int, attempts: int, failed_as: str, **cluster_id: Any) -> Poll:
    """describeCluster every `delay` seconds while the cluster is in `states`, `attempts` times;
    `cluster_id`: where its ClusterId comes from (Poll's `parameters`, `from_answer`, `nest_start`)."""
    return Poll(
        resource=DESCRIBE_CLUSTER,
        status="Cluster.Status.State",
        running=states,
        failure="Cluster.Status.State",
        failed=("TERMINATED_WITH_ERRORS",),
        message="Cluster.Status.StateChangeReason.Message",
        interval_seconds=max(1, delay),
        max_polls=attempts,
        failed_as=failed_as,
        timeout_as=failed_as,
        **cluster_id,
    )


class EmrCreateJobFlowOperator(AwsOperator):
    """Creates an EMR cluster from `job_flow_overrides` (RunJobFlow's request) and, with
    `wait_for_completion` or a `wait_policy`, waits for it; returns the cluster's id."""

    template_fields = ("job_flow_overrides", "waiter_delay", "waiter_max_attempts", "emr_conn_id")
    template_ext = (".json",)
    resource = RUN_JOB_FLOW
    fields = {"job_flow_overrides": Field(SPREAD, lambda v: request_member("emr", "RunJobFlow")(_request(v)))}
    returns = ("JobFlowId",)
    returns_value = True

    def __init__(
        self,
        *,
        emr_conn_id: str | None = DEFAULT_EMR_CONN_ID,
        job_flow_overrides: str | dict[str, Any] | None = None,
        wait_for_completion: bool | None = None,
        wait_policy: Any = None,
        waiter_max_attempts: int | None = None,
        waiter_delay: int | None = None,
        deferrable: bool = False,
        terminate_job_flow_on_failure: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.emr_conn_id = emr_conn_id
        self.job_flow_overrides = job_flow_overrides or {}
        self.waiter_max_attempts = waiter_max_attempts or 60
        self.waiter_delay = waiter_delay or 60
        self.deferrable = deferrable
        self.terminate_job_flow_on_failure = terminate_job_flow_on_failure
        policy = getattr(wait_policy, "value", wait_policy)
        if policy is None and wait_for_completion:
            policy = WAIT_FOR_COMPLETION
        if policy not in (None, WAIT_FOR_COMPLETION, WAIT_FOR_STEPS_COMPLETION):
            self.refuse("wait_policy", f"expected a WaitPolicy, got {wait_policy!r}")
        self.wait_policy = policy
        if emr_conn_id not in (None, "", DEFAULT_EMR_CONN_ID):
            self.refuse(
                "emr_conn_id",
                f"{emr_conn_id!r}: the cluster's configuration is job_flow_overrides (a connection's extra is not "
                "read when the DAG compiles)",
            )
        if isinstance(self.job_flow_overrides, str):  # (its keys would be RunJobFlow's parameters: not known yet)
            self.refuse("job_flow_overrides", "give a dict (its values may be templated)")
        for name in ("waiter_delay", "waiter_max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.refuse(name, f"expected a whole number of at least 1, known when the DAG compiles, got {value!r}")

    def integration_poll(self) -> Poll | None:
        if self.wait_policy is None:
            return None
        states = _STILL_STARTING if self.wait_policy == WAIT_FOR_COMPLETION else _STILL_UP
        return cluster_poll(
            states,
            self.waiter_delay,
            self.waiter_max_attempts,
            "AirflowException" if self.deferrable else "WaiterError",
            # the first describe reads the new cluster's id where the later ones do: Cluster.Id
            parameters=(),
            from_answer=("ClusterId=Cluster.Id",),
            nest_start="Cluster.Id=JobFlowId",
        )

    def call_returns(self) -> tuple[str, ...]:
        return ("Cluster.Id",) if self.wait_policy is not None else self.returns

    def wait_seconds(self) -> float | None:
        return float(self.waiter_max_attempts * self.waiter_delay) if self.wait_policy is not None else None

    def grants(self) -> tuple[Grant, ...]:
        overrides = self.job_flow_overrides if isinstance(self.job_flow_overrides, Mapping) else {}
        roles = [overrides.get(key) for key in ("ServiceRole", "JobFlowRole", "AutoScalingRole")]
        named = sorted({self.named(role) for role in roles if role} or {"*"})
        passed: list[str] = []
        for name in named:  # a role by name may sit under a path (an instance profile's role too, by its name)
            by_name = [arn("iam", f"role/{name}", region=""), arn("iam", f"role/*/{name}", region="")]
            passed += [name] if name.startswith("arn:") else by_name
        grants = [
            Grant(("elasticmapreduce:RunJobFlow",), ("*",)),  # (it takes no resource: the cluster is new)
            Grant(("iam:PassRole",), tuple(passed)),  # the cluster's service role and its instances' role, to EMR
        ]
        if overrides.get("Tags"):
            grants.append(Grant(("elasticmapreduce:AddTags",), (_cluster("*"),)))
        if self.wait_policy is not None:
            grants.append(Grant(("elasticmapreduce:DescribeCluster",), (_cluster("*"),)))
        return tuple(grants)


class EmrAddStepsOperator(AwsOperator):
    """Adds steps to a running EMR cluster and, with `wait_for_completion` (or deferred), waits for
    each in turn; returns their ids."""

    template_fields = ("job_flow_id", "job_flow_name", "cluster_states", "steps", "execution_role_arn")
    template_ext = (".json",)
    resource = ADD_STEPS
    fields = {
        "job_flow_id": Field("JobFlowId", text),
        "steps": Field("Steps", lambda v: request_member("emr", "AddJobFlowSteps", "Steps")(_request(v))),
        "execution_role_arn": Field("ExecutionRoleArn", text),
    }
    returns = ("StepIds",)
    returns_value = True
    returns_list = True

    def __init__(
        self,
        *,
        job_flow_id: str | None = None,
        job_flow_name: str | None = None,
        cluster_states: list[str] | None = None,
        steps: list[dict[str, Any]] | str | None = None,
        wait_for_completion: bool = False,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 60,
        execution_role_arn: str | None = None,
        deferrable: bool = False,
        openlineage_inject_parent_job_info: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_flow_id = job_flow_id
        self.job_flow_name = job_flow_name
        self.cluster_states = cluster_states or []
        self.steps = steps or []
        self.wait_for_completion = wait_for_completion or deferrable  # (deferred, the provider's trigger waits)
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.execution_role_arn = execution_role_arn
        self.deferrable = deferrable
        if (job_flow_id is None) == (job_flow_name is None):
            self.refuse("job_flow_id", "give exactly one of job_flow_id and job_flow_name (Airflow raises too)")
        if job_flow_name is not None:
            self.refuse(
                "job_flow_name", "give the cluster's id (job_flow_id); finding it by name is not translated yet"
            )
        if self.wait_for_completion and not isinstance(self.steps, list):
            self.refuse("steps", "waiting for steps given by a template: give the list (its values may be templated)")
        if openlineage_inject_parent_job_info:
            self.refuse("openlineage_inject_parent_job_info", "airstep sends no OpenLineage events")
        if isinstance(self.steps, str) and not self._holds_template(self.steps):
            self.refuse("steps", "give a list of steps, or a .json template file")

    def integration_poll(self) -> Poll | None:
        """Waiting, each step in turn as the provider's waiter does: describeStep until it ends;
        COMPLETED moves on to the next, any other end fails the try."""
        if not self.wait_for_completion:
            return None
        return Poll(
            resource=DESCRIBE_STEP,
            parameters=("ClusterId=JobFlowId",),
            status="described.Step.Status.State",
            running=("PENDING", "CANCEL_PENDING", "RUNNING"),
            failure="described.Step.Status.State",
            failed=("CANCELLED", "FAILED", "INTERRUPTED"),
            message="described.Step.Status.FailureDetails.Message",
            interval_seconds=max(1, int(self.waiter_delay)),
            max_polls=self._checks(),
            failed_as="AirflowException",  # (the provider's wait() raises it, deferred or not)
            timeout_as="AirflowException",
            each="StepIds",
            each_parameter="StepId",
            each_done=("COMPLETED",),
        )

    def _checks(self) -> int:
        """The waiter's checks for every step together (`waiter_max_attempts` a step)."""
        return int(self.waiter_max_attempts) * max(1, len(self.steps))

    def wait_seconds(self) -> float | None:
        return float(self._checks() * self.waiter_delay) if self.wait_for_completion else None

    def also_push(self) -> tuple[tuple[str, str], ...]:
        # the provider pushes the cluster's id too (with do_xcom_push): the call's own parameter
        return (("job_flow_id", "@JobFlowId"),) if self.do_xcom_push else ()

    def grants(self) -> tuple[Grant, ...]:
        cluster = _cluster(self.named(self.job_flow_id))
        actions = ("elasticmapreduce:AddJobFlowSteps",) + (
            ("elasticmapreduce:DescribeStep",) if self.wait_for_completion else ()
        )
        grants = [Grant(actions, (cluster,))]
        if self.execution_role_arn:  # the steps' runtime role, handed to EMR (a role, even when templated)
            role = self.named(self.execution_role_arn)
            grants.append(Grant(("iam:PassRole",), (role if role != "*" else arn("iam", "role/*", region=""),)))
        return tuple(grants)


class EmrTerminateJobFlowOperator(AwsOperator):
    """Terminates an EMR cluster; deferred, waits until it is TERMINATED."""

    template_fields = ("job_flow_id",)
    resource = TERMINATE
    fields = {"job_flow_id": Field("JobFlowIds", lambda v: [text(v)])}
    pushes = False

    def __init__(
        self,
        *,
        job_flow_id: str,
        waiter_delay: int = 60,
        waiter_max_attempts: int = 20,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_flow_id = job_flow_id
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.deferrable = deferrable

    def integration_poll(self) -> Poll | None:
        if not self.deferrable:  # (the provider waits only deferred: its trigger, until TERMINATED)
            return None
        return cluster_poll(
            _STILL_UP,
            self.waiter_delay,
            self.waiter_max_attempts,
            "AirflowException",
            parameters=("ClusterId=JobFlowIds[0]",),
        )

    def wait_seconds(self) -> float | None:
        return float(self.waiter_max_attempts * self.waiter_delay) if self.deferrable else None

    def grants(self) -> tuple[Grant, ...]:
        actions = ("elasticmapreduce:TerminateJobFlows",)
        if self.deferrable:
            actions += ("elasticmapreduce:DescribeCluster",)
        return (Grant(actions, (_cluster(self.named(self.job_flow_id)),)),)
