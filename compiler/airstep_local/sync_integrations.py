"""The `.sync` integrations moto's Step Functions interpreter lacks, run against moto's services.

moto's interpreter forwards Athena's optimized integration to the service and refuses its `.sync`
pattern; its `aws-sdk:athena` calls reach a moto that cannot parse botocore's rest-json for Athena
(`AWS_SDK_STAND_INS` answers them on moto's Athena backend); and it runs an ECS task only through
moto's EC2, and never stops it, and a Batch job only in Docker (here ECS tasks and Batch jobs are
simulated: `ECS_RUNS`, `BATCH_JOBS`). Each integration here
starts the work, then describes it until it ends, as Step Functions does: the state's result is
the last description; an end in failure fails the state with `States.TaskFailed` and the
description as its cause; the service's own errors are named `<Service>.<Code>`
(`Athena.InvalidRequestException`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from airstep.containers import CONTAINER_NAME, TRY_REQUEST_ENV
from airstep.integration import at_path
from airstep_local.containers import ContainerRuns
from airstep_local.recorded_calls import AwsCall, execution_role, record


def service_error(code: str, message: str, operation: str) -> ClientError:
    """A service's refusal, as boto3 raises it: a ClientError of the class the service's model names
    (`InvalidRequestException`), with the metadata of a 400 answer."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": str(uuid.uuid4())},
    }
    return type(code, (ClientError,), {})(response, operation)


Call = Callable[[dict[str, Any], str], dict[str, Any]]  # (parameters or the start's answer, region) -> answer


@dataclass(frozen=True)
class SyncIntegration:
    """A service's optimized integration: its API actions and the parameters Step Functions takes for
    each (lower-case action names); its start call and, for `.sync`, the describe call made with the
    start's answer until the state at `status` (a dotted path) is one of `succeeded` or `failed`."""

    error_prefix: str  # `Athena`: the service's errors are `Athena.<Code>`
    actions: dict[str, frozenset[str]]
    start: Call
    describe: Call
    status: str
    succeeded: tuple[str, ...]
    failed: tuple[str, ...]
    fails: Callable[[dict[str, Any]], bool] | None = None  # ... or an end `succeeded` names that AWS fails


def _athena(region: str) -> Any:
    from moto.athena import athena_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    return athena_backends[DEFAULT_ACCOUNT_ID][region]


def _start_query(parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """Athena's StartQueryExecution, on moto's backend (botocore now speaks rest-json to Athena,
    which moto's Athena responses do not parse)."""
    backend = _athena(region)
    workgroup = parameters.get("WorkGroup", "primary")
    if backend.get_work_group(workgroup) is None:
        raise service_error("InvalidRequestException", f"WorkGroup {workgroup} is not found.", "StartQueryExecution")
    query_id = backend.start_query_execution(
        query=parameters["QueryString"],
        context=parameters.get("QueryExecutionContext"),
        config=parameters.get("ResultConfiguration"),
        workgroup=workgroup,
        execution_parameters=parameters.get("ExecutionParameters"),
    )
    return {"QueryExecutionId": query_id}


def _describe_query(started: dict[str, Any], region: str) -> dict[str, Any]:
    """Athena's GetQueryExecution (the keys Step Functions' `.sync` answers that moto knows)."""
    backend = _athena(region)
    if started["QueryExecutionId"] not in backend.executions:
        message = f"QueryExecution {started['QueryExecutionId']} was not found"
        raise service_error("InvalidRequestException", message, "GetQueryExecution")
    execution = backend.get_query_execution(started["QueryExecutionId"])
    status: dict[str, Any] = {"State": execution.status}
    if getattr(execution, "state_change_reason", None):
        status["StateChangeReason"] = execution.state_change_reason
    return {
        "QueryExecution": {
            "QueryExecutionId": execution.id,
            "Query": execution.query,
            "ResultConfiguration": execution.config or {},
            "QueryExecutionContext": execution.context or {},
            "Status": status,
            "WorkGroup": execution.workgroup.name if execution.workgroup else None,
        }
    }


# ECS tasks run here (moto's would need its EC2 for a Fargate task's network and never stop): each
# request is kept, and its containers exit with the code `ecs_exit_code` gives (0 unless a test says);
# a try on the ECS executor (the local runner task definition) runs in a child process (CONTAINER_RUNS).
CONTAINER_RUNS: ContainerRuns | None = None
ECS_RUNS: list[dict[str, Any]] = []
ecs_exit_code: Callable[[dict[str, Any]], int] = lambda request: 0  # noqa: E731


def _run_task(parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """ECS's RunTask, simulated: the task is kept (ECS_RUNS) and has started."""
    from moto.core import DEFAULT_ACCOUNT_ID

    cluster = str(parameters.get("Cluster") or "default").rsplit("/", 1)[-1]
    task_id = uuid.uuid4().hex
    task = {
        "TaskArn": f"arn:aws:ecs:{region}:{DEFAULT_ACCOUNT_ID}:task/{cluster}/{task_id}",
        "ClusterArn": f"arn:aws:ecs:{region}:{DEFAULT_ACCOUNT_ID}:cluster/{cluster}",
        "TaskDefinitionArn": str(parameters.get("TaskDefinition")),
        "LastStatus": "PROVISIONING",
        "Overrides": parameters.get("Overrides") or {},
    }
    ECS_RUNS.append({"request": dict(parameters), "task": task})
    environment = _try_environment(parameters)
    if environment is not None:  # a try on the ECS executor
        if CONTAINER_RUNS is None:
            raise service_error("ClientException", "no local engine runs containers here", "RunTask")
        CONTAINER_RUNS.start(task["TaskArn"], environment)
    return {"Tasks": [task], "Failures": []}


def _try_environment(parameters: dict[str, Any]) -> dict[str, str] | None:
    """The environment of a try's container (its request's URI) when the task runs one, else None."""
    for container in (parameters.get("Overrides") or {}).get("ContainerOverrides") or []:
        environment = {item["Name"]: item["Value"] for item in container.get("Environment") or []}
        if container.get("Name") == CONTAINER_NAME and TRY_REQUEST_ENV in environment:
            return environment
    return None


def _describe_task(started: dict[str, Any], region: str) -> dict[str, Any]:
    """The started task, stopped: its container exited with `ecs_exit_code`'s code."""
    task = started["Tasks"][0]
    run = next(run for run in ECS_RUNS if run["task"]["TaskArn"] == task["TaskArn"])
    if _try_environment(run["request"]) is not None and CONTAINER_RUNS is not None:
        code = CONTAINER_RUNS.exit_code(task["TaskArn"])
        if code is None:
            return {**task, "LastStatus": "RUNNING"}
    else:
        code = ecs_exit_code(run["request"])
    return {
        **task,
        "LastStatus": "STOPPED",
        "StopCode": "EssentialContainerExited",
        "StoppedReason": "Essential container in task exited",
        "Containers": [{"Name": "main", "LastStatus": "STOPPED", "ExitCode": code}],
    }


# Batch jobs too (moto's run a Docker container): each submission is kept, and its job ends as
# `batch_status` says (SUCCEEDED unless a test says).
BATCH_JOBS: list[dict[str, Any]] = []
batch_status: Callable[[dict[str, Any]], tuple[str, str]] = lambda request: ("SUCCEEDED", "")  # noqa: E731


def _submit_job(parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """Batch's SubmitJob, simulated: the job is kept (BATCH_JOBS) and submitted."""
    from moto.core import DEFAULT_ACCOUNT_ID

    job_id = str(uuid.uuid4())
    job = {
        "JobId": job_id,
        "JobName": parameters.get("JobName"),
        "JobArn": f"arn:aws:batch:{region}:{DEFAULT_ACCOUNT_ID}:job/{job_id}",
    }
    BATCH_JOBS.append({"request": dict(parameters), "job": job})
    return job


def _describe_job(started: dict[str, Any], region: str) -> dict[str, Any]:
    """The submitted job, ended as `batch_status` says."""
    run = next(run for run in BATCH_JOBS if run["job"]["JobId"] == started["JobId"])
    status, reason = batch_status(run["request"])
    described = {**run["job"], "JobQueue": run["request"].get("JobQueue"), "Status": status}
    return {**described, "StatusReason": reason} if reason else described


SYNC_INTEGRATIONS: dict[str, SyncIntegration] = {
    "athena": SyncIntegration(
        error_prefix="Athena",
        actions={
            "startqueryexecution": frozenset(
                "QueryString ClientRequestToken QueryExecutionContext ResultConfiguration WorkGroup "
                "ExecutionParameters ResultReuseConfiguration".split()
            ),
        },
        start=_start_query,
        describe=_describe_query,
        status="QueryExecution.Status.State",
        succeeded=("SUCCEEDED",),
        failed=("FAILED", "CANCELLED"),
    ),
    "ecs": SyncIntegration(
        error_prefix="ECS",
        actions={
            "runtask": frozenset(
                "Cluster Group LaunchType NetworkConfiguration Overrides PlacementConstraints PlacementStrategy "
                "PlatformVersion PropagateTags TaskDefinition EnableExecuteCommand CapacityProviderStrategy Tags "
                "VolumeConfigurations ReferenceId".split()
            ),
        },
        start=_run_task,
        describe=_describe_task,
        status="LastStatus",
        succeeded=("STOPPED",),
        failed=(),
        # AWS fails the state when an essential container exits non-zero, the stopped task its cause
        fails=lambda task: any(c.get("ExitCode") not in (0, None) for c in task.get("Containers", [])),
    ),
    "batch": SyncIntegration(
        error_prefix="Batch",
        actions={
            "submitjob": frozenset(
                "ArrayProperties ContainerOverrides DependsOn JobDefinition JobName JobQueue Parameters RetryStrategy "
                "Timeout Tags EcsPropertiesOverride EksPropertiesOverride NodeOverrides ShareIdentifier "
                "SchedulingPriorityOverride".split()
            ),
        },
        start=_submit_job,
        describe=_describe_job,
        status="Status",
        succeeded=("SUCCEEDED",),
        failed=("FAILED",),
    ),
}


def _describe_jobs(parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """Batch's DescribeJobs of the simulated jobs (one it never made is not in the answer, as AWS's)."""
    wanted = set(parameters.get("Jobs") or ())
    return {"Jobs": [_describe_job(run["job"], region) for run in BATCH_JOBS if run["job"]["JobId"] in wanted]}


# aws-sdk integrations (Step Functions' service name, action) answered here
AWS_SDK_STAND_INS: dict[tuple[str, str], Call] = {
    ("athena", "getQueryExecution"): _describe_query,
    ("batch", "describeJobs"): _describe_jobs,
}


def run_sync_integrations() -> Callable[[], None]:
    """Make moto's interpreter run the `.sync` integrations above; returns a function that undoes it."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    class StateTaskServiceSync(StateTaskServiceCallback):
        """A `.sync` integration of `SYNC_INTEGRATIONS` (request-response too: the start call alone)."""

        def __init__(self, integration: SyncIntegration) -> None:
            # (a task-token endpoint too: moto's wait for `.sync` releases one when it ends)
            super().__init__({ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})
            self.integration = integration

        def _get_supported_parameters(self) -> set[str] | None:
            supported = self.integration.actions.get(self.resource.api_action.lower())
            return set(supported) if supported is not None else None

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if not isinstance(ex, ClientError):
                return super()._from_error(env=env, ex=ex)
            name = f"{self.integration.error_prefix}.{ex.response['Error']['Code']}"
            return self._failure(env, CustomErrorName(name), name, ex.response["Error"]["Message"])

        def _failure(self, env: Any, error_name: Any, error: str, cause: str) -> Any:
            details = TaskFailedEventDetails(
                error=error, cause=cause, resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type()
            )
            return FailureEvent(
                env=env,
                error_name=error_name,
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(taskFailedEventDetails=details),
            )

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            # the call the state makes (its start; what follows is Step Functions' own waiting), for the
            # IAM tests to judge by the execution's role
            action = self.resource.api_action
            operation, parameters = action[:1].upper() + action[1:], dict(normalised_parameters)
            record(AwsCall(None, self.resource.api_name, operation, parameters, role=execution_role.get()))
            env.stack.append(self.integration.start(normalised_parameters, resource_runtime_part.region))

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> Callable[[], Any]:
            integration = self.integration
            started = env.stack.pop()

            def described() -> Any:
                response = integration.describe(started, resource_runtime_part.region)
                state = at_path(response, integration.status)
                failing = integration.fails is not None and integration.fails(response)
                if state in integration.succeeded and not failing:
                    return json.loads(json.dumps(response, default=_iso))
                if state not in integration.failed and not failing:
                    return None  # still running: asked again
                failed = StatesErrorNameType.StatesTaskFailed
                cause = json.dumps(response, default=_iso)
                raise FailureEventException(self._failure(env, StatesErrorName(typ=failed), failed.to_name(), cause))

            return described

    original = state_task_factory.state_task_service_for

    def state_task_service_for(service_name: str) -> Any:
        integration = SYNC_INTEGRATIONS.get(service_name)
        return StateTaskServiceSync(integration) if integration is not None else original(service_name)

    state_task_factory.state_task_service_for = state_task_service_for  # type: ignore[assignment]
    calls_service = StateTaskServiceAwsSdk._eval_service_task  # (undone by restore)

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        stand_in = AWS_SDK_STAND_INS.get((self.resource.api_name, self.resource.api_action))
        if stand_in is None:
            client = boto_client_for(
                service=self._get_boto_service_name(),
                region=resource_runtime_part.region,
                state_credentials=state_credentials,
            )
            operation = client.meta.service_model.operation_model(
                self.resource.api_action[:1].upper() + self.resource.api_action[1:]
            )
            request = as_shape(normalised_parameters, operation.input_shape)
            response = getattr(client, self._get_boto_service_action())(**request) or {}
            response.pop("ResponseMetadata", None)
            env.stack.append(as_step_functions(response, operation.output_shape))
            return
        parameters = {key[:1].upper() + key[1:]: value for key, value in normalised_parameters.items()}
        env.stack.append(json.loads(json.dumps(stand_in(parameters, resource_runtime_part.region), default=_iso)))

    StateTaskServiceAwsSdk._eval_service_task = eval_service_task  # type: ignore[method-assign]

    def restore() -> None:
        state_task_factory.state_task_service_for = original
        StateTaskServiceAwsSdk._eval_service_task = calls_service  # type: ignore[method-assign]

    return restore


def as_shape(value: Any, shape: Any) -> Any:
    """Parameters as Step Functions' aws-sdk integration takes them (`ApplicationId`, `JobDriver`) as
    boto3 names them (`applicationId`, `jobDriver`): each structure's member by its name, whatever
    its case; a map's keys are the caller's and stay as written."""
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        members = {name.lower(): (name, member) for name, member in shape.members.items()}
        shaped = {}
        for key, item in value.items():
            name, member = members.get(key.lower(), (key, None))
            shaped[name] = as_shape(item, member)
        return shaped
    if shape.type_name == "list" and isinstance(value, list):
        return [as_shape(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: as_shape(item, shape.value) for key, item in value.items()}
    return value


def as_step_functions(value: Any, shape: Any) -> Any:
    """An answer as Step Functions' aws-sdk integration gives it: each structure's member name with
    its first letter upper-case (`jobRun.state` -> `JobRun.State`); a map's keys as the service wrote
    them; times as ISO text."""
    if shape is not None and shape.type_name == "structure" and isinstance(value, dict):
        return {
            key[:1].upper() + key[1:]: as_step_functions(item, shape.members.get(key)) for key, item in value.items()
        }
    if shape is not None and shape.type_name == "list" and isinstance(value, list):
        return [as_step_functions(item, shape.member) for item in value]
    if shape is not None and shape.type_name == "map" and isinstance(value, dict):
        return {key: as_step_functions(item, shape.value) for key, item in value.items()}
    return _iso(value) if hasattr(value, "isoformat") else value


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
