"""The compile function: a DAG file uploaded to S3 becomes state machines and schedules.

Idempotent create-or-update over the compiler's output: an unchanged DAG changes nothing, a broken
file records an import error and leaves the previous version deployed, a removed file deletes its
schedules and marks its DAGs removed (their history stays).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from airstep.containers import ContainerTarget
from airstep.contract import BUNDLES_PREFIX, DEFAULT_QUEUE, Schedule, ScheduleKind, ScheduleTarget, executor_function
from airstep.loader import DagLoadError
from airstep.model import DagModel, TaskModel
from airstep.runtime import assets
from airstep.runtime.admission import set_run_limit
from airstep.runtime.audit import (
    AUDIT_LOG_GROUP_ENV,
    NOT_WRITTEN_METRIC,
    AuditAction,
    AuditLog,
    AuditRecord,
    CloudWatchAuditLog,
    Via,
)
from airstep.runtime.audit import now as audit_now
from airstep.runtime.catchup import catch_up
from airstep.runtime.clients import client, registry
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.dag_parser import ParseRequest
from airstep.runtime.store import DagRecord, FileRecord, ImportErrorRecord, MetadataStore, metadata_store
from airstep.sandbox import ParsedFile
from airstep_compiler import queue_mappings
from airstep_compiler.bundles import MAX_BUNDLE_BYTES, Bundle, Snapshot, build_bundle, is_dag_file, take_snapshot
from airstep_compiler.compile import CompiledDag, CompileError, CompileOptions, DagSource, compile_dag
from airstep_compiler.dag_roles import DagRoles, DagRoleSettings, once_assumable
from airstep_compiler.iam import Boundary, outside_boundary, platform_targets
from airstep_compiler.limits import STATE_MACHINE_NAME_CHARS
from airstep_compiler.schedules import ScheduleError, scheduler_expression

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace="airstep", service=SERVICE_NAME)
SCHEDULE_NAME_CHARS = 64  # EventBridge Scheduler's limit on schedule names
# What became of a DAG file (a deploy's outcome, and an audit record's)
DEPLOYED = "deployed"
IMPORT_ERROR = "import_error"  # it would not load (its code failed; or a dag_id another file has)
REFUSED = "refused"  # it loaded, and the platform refused a DAG of it (a quota, a queue, a bundle too large)
REMOVED = "removed"
SUPERSEDED = "superseded"  # (an upload, a deletion) a later change of the file was deployed instead
NOT_A_DAG_FILE = "not_a_dag_file"  # a helper module or a data file (the DAGs it changes: `reconciled`)


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
    parser_function: str = ""
    executor_function: str = ""
    dag_prefix: str = "dags/"
    paused_at_creation: bool = False  # Airflow's [core] dags_are_paused_at_creation
    asset_events_arn: str = ""  # the function an AssetWatcher's queue delivers its messages to
    asset_queues: tuple[str, ...] = ()  # the queues (ARNs, IAM wildcards allowed) it may read: AssetQueues
    audit_log_group: str = ""  # where each upload and deletion is recorded (airstep.runtime.audit)
    # A DAG with AWS operators gets a role of its own under this boundary (empty: the shared role)
    dag_boundary_arn: str = ""
    state_machine_policy_arn: str = ""  # what every state machine's role allows (StateMachinePolicy)
    boundary: Boundary = Boundary(("*",), ("*",))  # DagBoundaryActions and DagBoundaryResources
    container: ContainerTarget | None = None  # where tries on the ECS executor run (None: ContainerSubnets empty)

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
            parser_function=env["AIRSTEP_PARSER_FUNCTION"],
            executor_function=env["AIRSTEP_EXECUTOR_FUNCTION"],
            dag_prefix=env.get("AIRSTEP_DAG_PREFIX", "dags/"),
            paused_at_creation=env.get("AIRSTEP_DAGS_ARE_PAUSED_AT_CREATION", "false").lower() == "true",
            asset_events_arn=env.get("AIRSTEP_ASSET_EVENTS_ARN", ""),
            asset_queues=tuple(arn for arn in env.get("AIRSTEP_ASSET_QUEUES", "").split(",") if arn),
            audit_log_group=env.get(AUDIT_LOG_GROUP_ENV, ""),
            dag_boundary_arn=env.get("AIRSTEP_DAG_BOUNDARY_ARN", ""),
            state_machine_policy_arn=env.get("AIRSTEP_STATE_MACHINE_POLICY_ARN", ""),
            boundary=Boundary(
                tuple(a for a in env.get("AIRSTEP_DAG_BOUNDARY_ACTIONS", "*").split(",") if a),
                tuple(r for r in env.get("AIRSTEP_DAG_BOUNDARY_RESOURCES", "*").split(",") if r),
            ),
            container=_container_target(env),
        )

    @property
    def account_parts(self) -> tuple[str, str, str]:
        """(partition, region, account) of the environment, from the task runner's ARN."""
        parts = self.task_runner_arn.split(":")
        return parts[1], parts[3], parts[4]

    def dag_roles(self) -> DagRoleSettings | None:
        if not self.dag_boundary_arn:
            return None
        partition, region, account = self.account_parts
        return DagRoleSettings(
            self.environment, partition, region, account, self.dag_boundary_arn, self.state_machine_policy_arn
        )

    def resource_name(self, dag_id: str, limit: int) -> str:
        """`airstep-<env>-<dag_id>`, hashed to fit `limit` characters when needed."""
        name = f"airstep-{self.environment}-{dag_id}"
        if len(name) <= limit:
            return name
        digest = hashlib.sha256(dag_id.encode()).hexdigest()[:8]
        return f"{name[: limit - 9]}-{digest}"


class Parser(Protocol):
    def __call__(self, request: ParseRequest) -> ParsedFile: ...


class LambdaParser:
    """Parses DAG files with the parse function: the only place they run while being deployed."""

    def __init__(self, function_name: str, lambda_client: Any) -> None:
        self.function_name = function_name
        self.lambda_client = lambda_client

    def __call__(self, request: ParseRequest) -> ParsedFile:
        response = self.lambda_client.invoke(
            FunctionName=self.function_name, Payload=json.dumps(request.to_event()).encode()
        )
        body = json.loads(response["Payload"].read())
        if "FunctionError" in response:  # the parse function itself failed: retry the whole event
            raise RuntimeError(f"the parse function failed on {request.uri}: {body.get('errorType', 'error')}")
        return ParsedFile.from_dict(body)


class Deployer:
    """Keeps the deployed DAGs equal to what the DAG prefix holds.

    Every S3 event is only a cue: the deployer snapshots the prefix as it is now into a bundle, parses
    (in the parse function) each DAG file whose inputs changed since it was last parsed, and deploys,
    records an import error for, or retires what it finds. Whatever order S3 delivers events in, and
    however often, the outcome is the prefix's latest state; a deploy cut short is completed by the
    next one (the event's retry), since each step compares what is deployed with what should be."""

    def __init__(
        self,
        settings: Settings,
        *,
        s3: Any,
        sfn: Any,
        scheduler: Any,
        store: MetadataStore,
        parser: Parser,
        lambda_client: Any = None,
        sqs: Any = None,
        audit: AuditLog | None = None,
        iam: Any = None,
    ) -> None:
        self.settings = settings
        self.s3 = s3
        self.sfn = sfn
        self.scheduler = scheduler
        self.store = store
        self.parser = parser
        self.lambda_client = lambda_client
        self.sqs = sqs
        self.audit = audit
        role_settings = settings.dag_roles()
        self.roles = DagRoles(role_settings, iam) if role_settings is not None and iam is not None else None

    def handle(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Reconcile each bucket an event names under the DAG prefix; one outcome per file that changed.
        Each upload or deletion the event reports then leaves its audit record."""
        records = [
            record
            for record in event.get("Records", [])
            if unquote_plus(record["s3"]["object"]["key"]).startswith(self.settings.dag_prefix)
        ]
        buckets = {record["s3"]["bucket"]["name"] for record in records}
        outcomes = [outcome for bucket in sorted(buckets) for outcome in self.reconcile(bucket)]
        if self.audit is not None:
            for record in records:
                self._audit(record, outcomes)
        return outcomes

    def _audit(self, record: dict[str, Any], outcomes: list[dict[str, Any]]) -> None:
        """The audit records of one S3 upload or deletion (one per DAG its file defines): who made it
        (the event's principal), the object version, and what became of that version — whichever
        event's reconcile deployed it (S3 events come in any order, and one reconcile takes every
        change the prefix holds). The deploy stands whatever happens here: a record that cannot be
        written is logged and counted (AuditRecordsNotWritten), never retried with the deploy."""
        assert self.audit is not None
        s3 = record["s3"]
        uri = f"s3://{s3['bucket']['name']}/{unquote_plus(s3['object']['key'])}"
        version = s3["object"].get("versionId")
        removed = record.get("eventName", "").startswith("ObjectRemoved")
        outcome, dag_ids = self._outcome_of(uri, version, removed, outcomes)
        arguments: dict[str, Any] = {"event": record.get("eventName", "")}
        if at := record.get("eventTime"):
            arguments["event_time"] = at
        if source_ip := record.get("requestParameters", {}).get("sourceIPAddress"):
            arguments["source_ip"] = source_ip
        if others := sorted({o["file"] for o in outcomes} - {uri}):  # what else this event's reconcile changed
            arguments["reconciled"] = others
        principal = record.get("userIdentity", {}).get("principalId") or "unknown"
        action = AuditAction.DELETE if removed else AuditAction.UPLOAD
        for dag_id in sorted(dag_ids) or [None]:
            entry = AuditRecord(audit_now(), action, principal, Via.S3, dag_id, None, outcome, arguments, uri, version)
            try:
                self.audit.append(entry)
            except Exception as exc:  # noqa: BLE001 - counted and alarmed on, never undoes the deploy
                logger.error("audit record not written", extra={"file": uri, "error": str(exc)})
                metrics.add_metric(name=NOT_WRITTEN_METRIC, unit=MetricUnit.Count, value=1)
                metrics.flush_metrics()

    def _outcome_of(
        self, uri: str, version: str | None, removed: bool, outcomes: list[dict[str, Any]]
    ) -> tuple[str, list[str]]:
        """What became of the file at this S3 version (any version when the event names none), and its DAGs."""
        found = next((o for o in outcomes if o["file"] == uri), None)
        if removed:
            if found is not None and found["outcome"] == REMOVED:
                return REMOVED, list(found["dags"])
            if (known := self.store.get_file(uri)) is not None:  # uploaded again since: it stays
                return SUPERSEDED, list(known.dag_ids)
            return REMOVED, sorted(d.dag_id for d in self.store.list_dags() if d.file == uri and d.removed)
        if found is not None and version in (None, found.get("version_id")):
            return found["outcome"], [d["dag_id"] if isinstance(d, dict) else d for d in found["dags"]]
        known = self.store.get_file(uri)
        if known is not None and version in (None, known.version_id):  # an earlier event's reconcile took it
            return known.outcome or (IMPORT_ERROR if known.failed else DEPLOYED), list(known.dag_ids)
        if found is not None or known is not None:  # a newer version was taken instead
            return SUPERSEDED, list(known.dag_ids) if known else []
        return NOT_A_DAG_FILE, []  # (or deleted before any reconcile saw it)

    def reconcile(self, bucket: str) -> list[dict[str, Any]]:
        snapshot = take_snapshot(self.s3, bucket, self.settings.dag_prefix)
        bundle = build_bundle(self.s3, snapshot, self._previous_bundle(bucket))
        dag_files = {path for path in snapshot.versions if is_dag_file(path, bundle.read(path))}
        known = {record.file: record for record in self.store.list_files()}
        outcomes = []
        for path in sorted(dag_files):
            uri = snapshot.uri(path)
            key = _parse_key(snapshot, path, known.get(uri))
            if uri in known and known[uri].parse_key == key:
                continue  # neither the file nor anything it read has changed
            outcomes.append(self._deploy_file(bundle, path, uri, known.get(uri)))
        for uri, record in known.items():
            if uri.startswith(snapshot.uri("")) and uri[len(snapshot.uri("")) :] not in dag_files:
                outcomes.append(self._remove_file(record))
        dags = self.store.list_dags() if self.settings.asset_events_arn or self.roles is not None else []
        if self.settings.asset_events_arn:
            self._sync_queue_mappings(dags)
        if self.roles is not None:
            self._sweep_roles(dags)
        self.store.put_latest_bundle(snapshot.bundle_id)
        return outcomes

    def _previous_bundle(self, bucket: str) -> Bundle | None:
        previous = self.store.latest_bundle()
        if previous is None:
            return None
        try:
            data = self.s3.get_object(Bucket=bucket, Key=f"{BUNDLES_PREFIX}{previous}.zip")["Body"].read()
        except ClientError:
            return None
        return Bundle(Snapshot(bucket, self.settings.dag_prefix, {}), data)

    def _deploy_file(self, bundle: Bundle, path: str, uri: str, known: FileRecord | None) -> dict[str, Any]:
        version = bundle.version
        previous_dags = known.dag_ids if known else []
        if len(bundle.data) > MAX_BUNDLE_BYTES:
            message = (
                f"the DAG bundle (everything under {self.settings.dag_prefix}) is {len(bundle.data):,} bytes "
                f"compressed, over the {MAX_BUNDLE_BYTES:,} bytes it may be; keep data files elsewhere"
            )
            return self._import_errors(path, version, [DagLoadError(uri, 0, message)], known, bundle, [], REFUSED)
        parsed = self.parser(ParseRequest(bundle.data, path, uri))
        if parsed.errors:
            return self._import_errors(path, version, parsed.errors, known, bundle, parsed.imports)
        problems: list[DagLoadError] = []
        refused = False  # a problem Airflow would not have: a limit or a resource of this platform
        plans: list[tuple[DagModel, CompiledDag]] = []
        roles_planned: dict[str, str] = {}  # lower-cased role name -> the DAG it is for
        # The function's name, not its ARN: same account and region, and ~50 bytes less per Lambda state.
        arn = self.settings.task_runner_arn  # arn:aws:lambda:<region>:<account>:function:<name>
        region = arn.split(":")[3] if arn.count(":") >= 3 else None
        options = CompileOptions(
            function_name=arn.split(":function:")[-1], region=region, container=self.settings.container
        )
        source = DagSource(uri, version, models=f"s3://{bundle.snapshot.bucket}/")
        for model in (DagModel.from_json(text) for text in parsed.models):
            owner = self.store.get_dag(model.dag_id)
            if owner and not owner.removed and owner.file != uri:
                problems.append(
                    DagLoadError(uri, model.line, f"dag_id {model.dag_id!r} is already defined in {owner.file}")
                )
                continue
            missing = self._missing_executors(model)
            if missing:
                problems.append(DagLoadError(uri, missing[0].line, _no_executor(missing[0], self.settings)))
                refused = True
                continue
            unwatchable = self._unwatchable_queues(model)
            if unwatchable:
                problems.append(DagLoadError(uri, model.line, unwatchable[0]))
                refused = True
                continue
            try:
                compiled = compile_dag(model, source, options)
                if model.schedule and model.schedule.timed:
                    scheduler_expression(model.schedule, model.start_date)
            except (CompileError, ScheduleError) as exc:
                line = exc.line if isinstance(exc, CompileError) and exc.line else model.line
                message = exc.message if isinstance(exc, CompileError) else str(exc)
                problems.append(DagLoadError(uri, line, message))
                refused = refused or isinstance(exc, CompileError)
                continue
            if self.roles is not None and compiled.policy is not None:
                parts = self.settings.account_parts
                beyond = platform_targets(model, self.settings.environment, *parts)
                beyond = beyond or outside_boundary(model, self.settings.boundary, *parts)
                role = self.roles.settings.role_name(model.dag_id).lower()
                taken = None if beyond else self.roles.taken(model.dag_id)
                if not beyond and not taken and role in roles_planned:  # (IAM names ignore case: etl and ETL)
                    taken = (
                        f"its IAM role's name is that of DAG {roles_planned[role]!r} in this file, whatever the case"
                    )
                roles_planned.setdefault(role, model.dag_id)
                if beyond or taken:
                    line, message = (model.task_map[beyond[0][0]].line, beyond[0][1]) if beyond else (model.line, taken)
                    problems.append(DagLoadError(uri, line, str(message)))
                    refused = True
                    continue
            plans.append((model, compiled))
        if problems:
            outcome = REFUSED if refused else IMPORT_ERROR
            return self._import_errors(path, version, problems, known, bundle, parsed.imports, outcome)
        for model, _ in plans:  # the task runner reads the model, never the DAG file
            self.s3.put_object(Bucket=bundle.snapshot.bucket, Key=model.storage_key(), Body=model.to_json().encode())
        deployed = [self._deploy_dag(model, compiled, source) for model, compiled in plans]
        dag_ids = [model.dag_id for model, _ in plans]
        for gone in sorted(set(previous_dags) - set(dag_ids)):
            self._retire(gone)
        self.store.clear_import_error(uri)
        key = _parse_key(bundle.snapshot, path, FileRecord(uri, "", dag_ids, parsed.imports))
        version_id = bundle.snapshot.versions.get(path)
        self.store.put_file(FileRecord(uri, key, dag_ids, parsed.imports, version_id=version_id, outcome=DEPLOYED))
        return {"file": uri, "outcome": DEPLOYED, "dags": deployed, "version_id": version_id}

    def _missing_executors(self, model: DagModel) -> list[TaskModel]:
        """Tasks whose queue names an executor function this environment does not have."""
        missing = []
        for queue in sorted({t.queue for t in model.tasks} - {DEFAULT_QUEUE}):
            name = executor_function(self.settings.executor_function, queue)
            try:
                self.lambda_client.get_function_configuration(FunctionName=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                missing.append(next(t for t in model.tasks if t.queue == queue))
        return missing

    def _unwatchable_queues(self, model: DagModel) -> list[str]:
        """Why the DAG's AssetWatchers cannot be served: a queue the environment may not read (not in
        AssetQueues), or one Lambda would not map."""
        watched = assets.condition_queues(model.schedule.assets if model.schedule else None)
        problems = []
        for name, _, arn in sorted(watched, key=lambda w: (w[2], w[0])):
            if not any(fnmatch.fnmatchcase(arn, allowed) for allowed in self.settings.asset_queues):
                problems.append(
                    f"asset {name!r} watches the SQS queue {arn}, which this environment may not read: "
                    "add the queue's ARN to the stack's AssetQueues parameter (template.yaml)"
                )
            elif (why := queue_mappings.unreadable(self.sqs, arn)) is not None:
                problems.append(f"asset {name!r} watches the SQS queue {arn}, which cannot be watched: {why}")
        return problems

    def _sync_queue_mappings(self, dags: list[DagRecord]) -> dict[str, list[str]]:
        """The watched queues deliver to asset-events as the deployed DAGs (`dags`, all of them) now
        ask (after the whole reconcile: a watcher that moved from one DAG or file to another keeps
        its queue mapped)."""
        watched = {
            arn
            for record in dags
            if not record.removed and record.schedule is not None and record.schedule.assets is not None
            for _, _, arn in assets.condition_queues(record.schedule.assets)
        }
        changed = queue_mappings.sync(self.lambda_client, self.settings.asset_events_arn, watched)
        if changed["mapped"] or changed["unmapped"]:
            logger.info("watched queues", extra=changed)
        return changed

    def _remove_file(self, record: FileRecord) -> dict[str, Any]:
        """The file is gone (or no longer defines DAGs): its schedules go, its DAGs are marked removed."""
        for dag_id in record.dag_ids:
            self._retire(dag_id)
        self.store.clear_import_error(record.file)
        self.store.delete_file(record.file)
        return {"file": record.file, "outcome": REMOVED, "dags": sorted(record.dag_ids)}

    def _deploy_dag(self, model: DagModel, compiled: CompiledDag, source: DagSource) -> dict[str, Any]:
        name = self.settings.resource_name(model.dag_id, STATE_MACHINE_NAME_CHARS)
        definition = compiled.definition_json
        arn = self._state_machine_arn(name)
        previous = self.store.get_dag(model.dag_id)
        changed, kept = True, bool(previous and previous.role_kept)  # (until a sweep deletes it)
        shared = self.settings.state_machine_role_arn
        role = shared
        if self.roles is not None and compiled.policy is not None:
            role = self.roles.ensure(model.dag_id, compiled.policy)
        try:
            current = self.sfn.describe_state_machine(stateMachineArn=arn)
            if current["definition"] == definition and current["roleArn"] == role:
                changed = False
            else:
                once_assumable(
                    lambda: self.sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role)
                )
            if self.roles is not None and role == shared and current["roleArn"] != shared:
                kept = not self._drop_role(model.dag_id, arn)  # its AWS operators are gone: the shared role serves it
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "StateMachineDoesNotExist":
                raise
            arn = once_assumable(
                lambda: self.sfn.create_state_machine(
                    name=name,
                    definition=definition,
                    roleArn=role,
                    type="STANDARD",
                    tags=[{"key": "airstep:dag_id", "value": model.dag_id[:256]}],
                )["stateMachineArn"]
            )
        if previous is not None and previous.removed:
            previous = None  # its file came back: a new DAG, as far as pausing and catchup go
        new = previous is None
        paused = self._paused_upon_creation(model) if previous is None else previous.paused
        timed = model.schedule is not None and model.schedule.timed
        schedule_name = self._schedule(model, arn, paused) if timed else self._delete_schedule(model.dag_id)
        outcome: dict[str, Any] = {"dag_id": model.dag_id, "state_machine_arn": arn, "changed": changed}
        if new and not paused:  # before the record: a deploy that fails part-way is retried as new
            outcome.update(self._catch_up(model, arn))
        elif previous is not None and previous.max_active_runs != model.max_active_runs:
            outcome["started"] = sorted(set_run_limit(self.store, self.sfn, model.dag_id, model.max_active_runs))
        self._register_assets(model.dag_id, model.schedule, previous.schedule if previous else None)
        record = dag_record(model, source, arn, schedule_name, previous, changed, paused=paused)
        self.store.put_dag(dataclasses.replace(record, role_kept=kept))
        logger.info("dag deployed", extra={"dag_id": model.dag_id, "changed": changed, "version": source.version})
        return outcome

    def _paused_upon_creation(self, model: DagModel) -> bool:
        chosen = model.is_paused_upon_creation
        return self.settings.paused_at_creation if chosen is None else chosen

    def _catch_up(self, model: DagModel, machine_arn: str) -> dict[str, Any]:
        """A DAG deployed for the first time starts the runs it missed since its start_date (catchup),
        or its latest (no catchup), as Airflow's scheduler would on first seeing it."""
        if model.schedule is None or not model.schedule.timed or model.start_date is None:
            return {}
        caught = catch_up(
            self.store,
            self.sfn,
            model.dag_id,
            model.schedule,
            model.timezone,
            machine_arn,
            model.max_active_runs,
            start_date=datetime.fromisoformat(model.start_date),
            now=datetime.now(UTC),
            catchup=model.catchup,
            end_date=datetime.fromisoformat(model.end_date) if model.end_date else None,
        )
        if caught.truncated:
            logger.warning("catchup truncated", extra={"dag_id": model.dag_id, "admitted": len(caught.admitted)})
        return {"caught_up": [a.run_id for a in caught.admitted], "catchup_truncated": caught.truncated}

    def _schedule(self, model: DagModel, machine_arn: str, paused: bool) -> str:
        assert model.schedule is not None
        name = self.settings.resource_name(model.dag_id, SCHEDULE_NAME_CHARS)
        target = ScheduleTarget(
            model.dag_id,
            machine_arn,
            model.schedule,
            model.timezone,
            max_active_runs=model.max_active_runs,
            catchup=model.catchup,
        )
        request: dict[str, Any] = {
            "Name": name,
            "GroupName": self.settings.schedule_group,
            "ScheduleExpression": scheduler_expression(model.schedule, model.start_date),
            "ScheduleExpressionTimezone": model.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "DISABLED" if paused else "ENABLED",
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

    def _register_assets(self, dag_id: str, schedule: Schedule | None, before: Schedule | None) -> None:
        """A DAG scheduled on assets is told of their events (airstep.runtime.assets): it is one of
        their consumers, and no longer one of those it stopped naming."""
        now = schedule.assets if schedule is not None else None
        assets.subscribe(self.store, dag_id, now, before.assets if before is not None else None)

    def _retire(self, dag_id: str) -> None:
        self._delete_schedule(dag_id)
        record = self.store.get_dag(dag_id)
        if record is not None:
            kept = self.roles is not None and not self._drop_role(dag_id, record.state_machine_arn)
            self._register_assets(dag_id, None, record.schedule)
            self.store.put_dag(dataclasses.replace(record.retired(), role_kept=kept))
        logger.info("dag removed", extra={"dag_id": dag_id})

    def _drop_role(self, dag_id: str, machine_arn: str) -> bool:
        """Delete the DAG's own role unless runs still use it (a running execution keeps the role it
        started with); whether it is gone."""
        assert self.roles is not None
        if not self.roles.has(dag_id):  # (most DAGs: the shared role, nothing to ask of their runs)
            return True
        running = self.sfn.list_executions(stateMachineArn=machine_arn, statusFilter="RUNNING", maxResults=1)
        if running.get("executions"):
            logger.info("dag role kept while runs use it", extra={"dag_id": dag_id})
            return False
        self.roles.remove(dag_id)
        return True

    def _sweep_roles(self, dags: list[DagRecord]) -> None:
        """The roles kept while runs used them (of `dags`, all of them): deleted once those runs ended."""
        for record in dags:
            if record.role_kept and self._drop_role(record.dag_id, record.state_machine_arn):
                self.store.put_dag(dataclasses.replace(record, role_kept=False))

    def _import_errors(
        self,
        path: str,
        version: str,
        errors: list[DagLoadError],
        known: FileRecord | None,
        bundle: Bundle,
        imports: list[str],
        outcome: str = IMPORT_ERROR,
    ) -> dict[str, Any]:
        """Record why the file failed (`outcome`: it would not load, or it loaded and the platform
        refused it); its DAGs' previous versions keep running. A failed file is parsed again whenever
        the bundle changes (a missing helper may have arrived)."""
        uri = bundle.snapshot.uri(path)
        problems = [{"line": e.line, "message": e.message} for e in errors]
        self.store.put_import_error(ImportErrorRecord(uri, version, problems, datetime.now(UTC).isoformat()))
        dag_ids = known.dag_ids if known else []
        key = f"{bundle.snapshot.bundle_id}:failed"
        version_id = bundle.snapshot.versions.get(path)
        self.store.put_file(FileRecord(uri, key, dag_ids, imports, True, version_id, outcome))
        metrics.add_metric(name="DagImportErrors", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        logger.warning("dag import error", extra={"file": uri, "errors": [str(e) for e in errors]})
        errors_text = [str(e) for e in errors]
        return {
            "file": uri,
            "outcome": outcome,
            "errors": errors_text,
            "dags": sorted(dag_ids),
            "version_id": version_id,
        }

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
    paused: bool = False,
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
        paused=paused,
        paused_at=previous.paused_at if previous and paused else None,
        compiled_at=datetime.now(UTC).isoformat() if changed or previous is None else previous.compiled_at,
        tasks=len(model.tasks),
        max_active_runs=model.max_active_runs,
        catchup=model.catchup,
        start_date=model.start_date,
        end_date=model.end_date,
        tags=list(model.tags),
        params=dict(model.params),
        param_schemas=[list(param) for param in model.param_schemas],
        model=source.model_uri(model),
    )


def _container_target(env: Mapping[str, str]) -> ContainerTarget | None:
    """The environment's container settings (template.yaml: ContainerSubnets and the runner task
    definition), or None when it has no subnets for them."""
    subnets = tuple(s for s in env.get("AIRSTEP_CONTAINER_SUBNETS", "").split(",") if s)
    if not subnets:
        return None
    return ContainerTarget(
        cluster=env["AIRSTEP_CONTAINER_CLUSTER"],
        task_definition=env["AIRSTEP_CONTAINER_TASK_DEFINITION"],
        subnets=subnets,
        security_groups=tuple(s for s in env.get("AIRSTEP_CONTAINER_SECURITY_GROUPS", "").split(",") if s),
        public_ip=env.get("AIRSTEP_CONTAINER_PUBLIC_IP", "ENABLED") == "ENABLED",
    )


def _no_executor(task: TaskModel, settings: Settings) -> str:
    name = executor_function(settings.executor_function, task.queue)
    return (
        f"task {task.task_id!r}: queue {task.queue!r} has no executor function {name} in this environment "
        "(README: Giving tasks AWS permissions)"
    )


def _parse_key(snapshot: Snapshot, path: str, record: FileRecord | None) -> str:
    """What a file's parse depends on: its own version, the versions of the bundle modules it imported
    last time, and every data file; a file that failed depends on the whole bundle."""
    if record is not None and record.failed:
        return f"{snapshot.bundle_id}:failed"
    inputs = [snapshot.versions.get(path), snapshot.data_digest()]
    inputs += [f"{module}={snapshot.versions.get(module)}" for module in (record.imports if record else [])]
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:20]


def _deployer() -> Deployer:
    settings = Settings.from_env()
    return Deployer(
        settings,
        s3=client("s3"),
        sfn=client("stepfunctions"),
        scheduler=client("scheduler"),
        store=metadata_store(),
        parser=LambdaParser(settings.parser_function, client("lambda")),
        lambda_client=client("lambda"),
        sqs=client("sqs"),
        audit=CloudWatchAuditLog(client("logs"), settings.audit_log_group, "compile-dags")
        if settings.audit_log_group
        else None,
        iam=client("iam") if settings.dag_boundary_arn else None,
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"files": registry.get("deployer", _deployer).handle(event)}
