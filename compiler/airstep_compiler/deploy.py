"""The compile function: a DAG file uploaded to S3 becomes state machines and schedules.

Idempotent create-or-update over the compiler's output: an unchanged DAG changes nothing, a broken
file records an import error and leaves the previous version deployed, a removed file deletes its
schedules and marks its DAGs removed (their history stays).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from airstep.contract import ScheduleKind, ScheduleTarget
from airstep.loader import MAX_DAG_FILE_BYTES, DagLoadError, load_dag_file
from airstep.model import DagModel
from airstep.runtime.clients import client, metadata_store, registry
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.store import DagRecord, ImportErrorRecord, MetadataStore
from airstep_compiler.compile import CompiledDag, CompileError, CompileOptions, DagSource, compile_dag
from airstep_compiler.limits import STATE_MACHINE_NAME_CHARS
from airstep_compiler.schedules import ScheduleError, scheduler_expression

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace="airstep", service=SERVICE_NAME)
SCHEDULE_NAME_CHARS = 64  # EventBridge Scheduler's limit on schedule names


@dataclass(frozen=True, slots=True)
class Settings:
    """What the compile function needs to know about its environment (from its env variables)."""

    environment: str
    task_runner_arn: str
    state_machine_role_arn: str
    start_run_arn: str
    scheduler_role_arn: str
    schedule_group: str
    schedule_dlq_arn: str
    dag_prefix: str = "dags/"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            environment=env["AIRSTEP_ENVIRONMENT"],
            task_runner_arn=env["AIRSTEP_TASK_RUNNER_ARN"],
            state_machine_role_arn=env["AIRSTEP_STATE_MACHINE_ROLE_ARN"],
            start_run_arn=env["AIRSTEP_START_RUN_ARN"],
            scheduler_role_arn=env["AIRSTEP_SCHEDULER_ROLE_ARN"],
            schedule_group=env["AIRSTEP_SCHEDULE_GROUP"],
            schedule_dlq_arn=env["AIRSTEP_SCHEDULE_DLQ_ARN"],
            dag_prefix=env.get("AIRSTEP_DAG_PREFIX", "dags/"),
        )

    def resource_name(self, dag_id: str, limit: int) -> str:
        """`airstep-<env>-<dag_id>`, hashed to fit `limit` characters when needed."""
        name = f"airstep-{self.environment}-{dag_id}"
        if len(name) <= limit:
            return name
        digest = hashlib.sha256(dag_id.encode()).hexdigest()[:8]
        return f"{name[: limit - 9]}-{digest}"


class Deployer:
    """Applies S3 object events to state machines, schedules and the metadata table."""

    def __init__(self, settings: Settings, *, s3: Any, sfn: Any, scheduler: Any, store: MetadataStore) -> None:
        self.settings = settings
        self.s3 = s3
        self.sfn = sfn
        self.scheduler = scheduler
        self.store = store

    def handle(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        outcomes = []
        for record in event.get("Records", []):
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
            if not key.startswith(self.settings.dag_prefix) or not key.endswith(".py"):
                outcomes.append({"file": key, "outcome": "ignored"})
                continue
            uri = f"s3://{bucket}/{key}"
            if record["eventName"].startswith("ObjectRemoved"):
                outcomes.append(self.remove_file(uri))
            else:
                obj = record["s3"]["object"]
                outcomes.append(self.deploy_file(bucket, key, obj.get("versionId", "null"), int(obj.get("size", 0))))
        return outcomes

    def deploy_file(self, bucket: str, key: str, version: str, size: int) -> dict[str, Any]:
        uri = f"s3://{bucket}/{key}"
        if size > MAX_DAG_FILE_BYTES:
            return self._import_errors(
                uri, version, [DagLoadError(uri, 1, f"file is {size:,} bytes; limit {MAX_DAG_FILE_BYTES:,}")]
            )
        source = self.s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        loaded = load_dag_file(uri, source)
        if loaded.errors:
            return self._import_errors(uri, version, loaded.errors)
        problems: list[DagLoadError] = []
        plans: list[tuple[DagModel, CompiledDag]] = []
        # The function's name, not its ARN: same account and region, and ~50 bytes less per Lambda state.
        options = CompileOptions(function_name=self.settings.task_runner_arn.split(":function:")[-1])
        for dag in loaded.dags.values():
            owner = self.store.get_dag(dag.dag_id)
            if owner and not owner.removed and owner.file != uri:
                problems.append(
                    DagLoadError(uri, dag.location.line, f"dag_id {dag.dag_id!r} is already defined in {owner.file}")
                )
                continue
            model = DagModel.from_dag(dag)
            try:
                compiled = compile_dag(model, DagSource(uri, version, models=f"s3://{bucket}/"), options)
                if model.schedule:
                    scheduler_expression(model.schedule, model.start_date)
            except (CompileError, ScheduleError) as exc:
                line = exc.line if isinstance(exc, CompileError) and exc.line else dag.location.line
                message = exc.message if isinstance(exc, CompileError) else str(exc)
                problems.append(DagLoadError(uri, line, message))
                continue
            plans.append((model, compiled))
        if problems:
            return self._import_errors(uri, version, problems)
        for model, _ in plans:  # the task runner reads the model, never the DAG file
            self.s3.put_object(Bucket=bucket, Key=model.storage_key(), Body=model.to_json().encode())
        deployed = [self._deploy_dag(model, compiled, uri, version) for model, compiled in plans]
        for gone in self._dags_of(uri) - {m.dag_id for m, _ in plans}:
            self._retire(gone)
        self.store.clear_import_error(uri)
        return {"file": uri, "outcome": "deployed", "dags": deployed}

    def remove_file(self, uri: str) -> dict[str, Any]:
        removed = sorted(self._dags_of(uri))
        for dag_id in removed:
            self._retire(dag_id)
        self.store.clear_import_error(uri)
        return {"file": uri, "outcome": "removed", "dags": removed}

    def _deploy_dag(self, model: DagModel, compiled: CompiledDag, uri: str, version: str) -> dict[str, Any]:
        name = self.settings.resource_name(model.dag_id, STATE_MACHINE_NAME_CHARS)
        definition = compiled.definition_json
        arn = self._state_machine_arn(name)
        changed = True
        try:
            current = self.sfn.describe_state_machine(stateMachineArn=arn)
            if current["definition"] == definition:
                changed = False
            else:
                self.sfn.update_state_machine(stateMachineArn=arn, definition=definition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "StateMachineDoesNotExist":
                raise
            arn = self.sfn.create_state_machine(
                name=name,
                definition=definition,
                roleArn=self.settings.state_machine_role_arn,
                type="STANDARD",
                tags=[{"key": "airstep:dag_id", "value": model.dag_id[:256]}],
            )["stateMachineArn"]
        schedule_name = self._schedule(model, arn) if model.schedule else self._delete_schedule(model.dag_id)
        previous = self.store.get_dag(model.dag_id)
        self.store.put_dag(dag_record(model, DagSource(uri, version), arn, schedule_name, previous, changed))
        logger.info("dag deployed", extra={"dag_id": model.dag_id, "changed": changed, "version": version})
        return {"dag_id": model.dag_id, "state_machine_arn": arn, "changed": changed}

    def _schedule(self, model: DagModel, machine_arn: str) -> str:
        assert model.schedule is not None
        name = self.settings.resource_name(model.dag_id, SCHEDULE_NAME_CHARS)
        target = ScheduleTarget(model.dag_id, machine_arn, model.schedule, model.timezone)
        request: dict[str, Any] = {
            "Name": name,
            "GroupName": self.settings.schedule_group,
            "ScheduleExpression": scheduler_expression(model.schedule, model.start_date),
            "ScheduleExpressionTimezone": model.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": self.settings.start_run_arn,
                "RoleArn": self.settings.scheduler_role_arn,
                "Input": json.dumps(target.to_input(), sort_keys=True),
                "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
                "DeadLetterConfig": {"Arn": self.settings.schedule_dlq_arn},
            },
        }
        now = datetime.now(UTC)
        if model.start_date and model.schedule.kind is not ScheduleKind.ONCE:
            start = datetime.fromisoformat(model.start_date)
            if start > now:  # EventBridge refuses a StartDate in the past; Airflow's catchup is separate
                request["StartDate"] = start
        if model.end_date:
            request["EndDate"] = datetime.fromisoformat(model.end_date)
        try:
            self.scheduler.update_schedule(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            self.scheduler.create_schedule(**request)
        return name

    def _delete_schedule(self, dag_id: str) -> None:
        try:
            self.scheduler.delete_schedule(
                Name=self.settings.resource_name(dag_id, SCHEDULE_NAME_CHARS), GroupName=self.settings.schedule_group
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise

    def _retire(self, dag_id: str) -> None:
        self._delete_schedule(dag_id)
        record = self.store.get_dag(dag_id)
        if record is not None:
            self.store.put_dag(record.retired())
        logger.info("dag removed", extra={"dag_id": dag_id})

    def _dags_of(self, uri: str) -> set[str]:
        return {d.dag_id for d in self.store.list_dags() if d.file == uri and not d.removed}

    def _import_errors(self, uri: str, version: str, errors: list[DagLoadError]) -> dict[str, Any]:
        problems = [{"line": e.line, "message": e.message} for e in errors]
        self.store.put_import_error(ImportErrorRecord(uri, version, problems, datetime.now(UTC).isoformat()))
        metrics.add_metric(name="DagImportErrors", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        logger.warning("dag import error", extra={"file": uri, "errors": [str(e) for e in errors]})
        return {"file": uri, "outcome": "import_error", "errors": [str(e) for e in errors]}

    def _state_machine_arn(self, name: str) -> str:
        runner = self.settings.task_runner_arn.split(":")
        region, account = runner[3], runner[4]
        return f"arn:aws:states:{region}:{account}:stateMachine:{name}"


def dag_record(
    model: DagModel,
    source: DagSource,
    state_machine_arn: str,
    schedule_name: str | None,
    previous: DagRecord | None = None,
    changed: bool = True,
) -> DagRecord:
    """The record of a DAG just deployed (here, or by the local engine); pausing survives a redeploy."""
    return DagRecord(
        dag_id=model.dag_id,
        file=source.uri,
        version=source.version,
        schedule=model.schedule,
        timezone=model.timezone,
        state_machine_arn=state_machine_arn,
        schedule_name=schedule_name,
        paused=previous.paused if previous else False,
        compiled_at=datetime.now(UTC).isoformat() if changed or previous is None else previous.compiled_at,
        tasks=len(model.tasks),
        tags=list(model.tags),
    )


def _deployer() -> Deployer:
    return Deployer(
        Settings.from_env(),
        s3=client("s3"),
        sfn=client("stepfunctions"),
        scheduler=client("scheduler"),
        store=metadata_store(),
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"files": registry.get("deployer", _deployer).handle(event)}
