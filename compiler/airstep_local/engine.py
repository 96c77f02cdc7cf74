"""The local engine: a compiled DAG run on moto's Step Functions, tasks by the real task runner.

Everything AWS is moto, in this process: Step Functions executes the compiled definition, DynamoDB
holds the run metadata, and every Lambda invocation is answered by `airstep.runtime.task_runner`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from airstep.connections import secrets
from airstep.contract import CTX, RUN, Action, DagRun, Payload, TaskOutcome, execution_name, expanded
from airstep.model import DagModel
from airstep.runtime import (
    asset_events,
    assets,
    dag_parser,
    deadline_alerts,
    executor,
    run_reconciler,
    run_starter,
    run_tracker,
    task_logs,
    task_runner,
)
from airstep.runtime.clients import registry
from airstep.runtime.constants import (
    DEFAULT_EXECUTOR_MEMORY_MB,
    EXECUTOR_FUNCTION_ENV,
    EXECUTOR_MEMORY_ENV,
    RUNNER_MEMORY_MB,
    START_RUN_FUNCTION_ENV,
    TABLE_NAME_ENV,
    XCOM_BUCKET_ENV,
)
from airstep.runtime.deadline_alerts import SCHEDULE_GROUP_ENV, SCHEDULER_ROLE_ENV
from airstep.runtime.scheduling import manual_run
from airstep.runtime.store import MetadataStore, RunKey, TaskInstance, create_table
from airstep.runtime.store.assets import Consumer
from airstep.runtime.store.schema import (
    ASSET_PREFIX,
    ASSET_QUEUE_PREFIX,
    CONSUMER_PREFIX,
    DAG_PREFIX,
    GATE_PREFIX,
    POOL_PREFIX,
    POOLS_PK,
    RUN_POOLS_PK,
    RUN_SK,
    WATCHED_BUCKET_PREFIX,
    WATCHED_QUEUE_PREFIX,
)
from airstep.states import RunState, TaskState
from airstep_compiler import CompileError, CompileOptions, DagSource, compile_dag
from airstep_compiler.deploy import dag_record
from airstep_compiler.deploy import lambda_handler as compile_dags
from airstep_compiler.limits import STATE_MACHINE_NAME_CHARS, Limits
from airstep_local import services, sync_integrations
from airstep_local.aws import BackendHistories, LocalSession, speed_up_moto
from airstep_local.containers import LOCAL_TARGET, ContainerRuns

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass(frozen=True, slots=True)
class LocalNames:
    """What the local engine calls its table, bucket and functions. `of_stack` gives the names
    template.yaml gives a deployed environment's (the IAM tests hold calls against its policies)."""

    table: str = "airstep-local"
    bucket: str = "airstep-local"  # graph models, as the DAG bucket holds them in AWS
    xcom_bucket: str = "airstep-local-xcoms"  # XComs too large for a record
    run_task: str = "airstep-local-run-task"
    execute_task: str = "airstep-local-execute-task"
    parse_dags: str = "airstep-local-parse-dags"
    compile_dags: str = "airstep-local-compile-dags"
    start_run: str = "airstep-local-start-run"
    track_runs: str = "airstep-local-track-runs"
    reconcile_runs: str = "airstep-local-reconcile-runs"
    asset_events: str = "airstep-local-asset-events"

    @classmethod
    def of_stack(cls, environment: str) -> LocalNames:
        function = f"airstep-{environment}-{{}}".format
        return cls(
            table=f"airstep-{environment}-metadata",
            bucket=f"airstep-{environment}-dags-{ACCOUNT}-{REGION}",
            xcom_bucket=f"airstep-{environment}-xcoms-{ACCOUNT}-{REGION}",
            run_task=function("run-task"),
            execute_task=function("execute-task"),
            parse_dags=function("parse-dags"),
            compile_dags=function("compile-dags"),
            start_run=function("start-run"),
            track_runs=function("track-runs"),
            reconcile_runs=function("reconcile-runs"),
            asset_events=function("asset-events"),
        )

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


DEFAULT_NAMES = LocalNames()
FUNCTION_NAME = DEFAULT_NAMES.run_task
PARSER_NAME = DEFAULT_NAMES.parse_dags
# Local history (`airstep runs`) keeps each DAG's newest runs whole, and the records alone (state,
# logical date: what a backfill's reprocessing reads) of many more: the file is read and written whole.
KEEP_RUNS_PER_DAG = 100
THREAD_STACK_BYTES = 64 * 1024 * 1024  # each thread a local run starts (reserved, used as needed)
DEADLINE_LOOK_SECONDS = 0.25  # how often a local run looks for deadline schedules whose moment has come
LOGS_FOLDER = "logs"  # beside the local history: each try's log (airstep.runtime.task_logs)
KEEP_RUN_RECORDS_PER_DAG = 1_000
Progress = Callable[[str, TaskState, int], None]  # (task_id, state, try_number) whenever a task changes
RunProgress = Callable[[str, str, TaskState, int], None]  # the same, after the run_id


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended: the run's state and the latest try of every task instance."""

    dag_id: str
    run_id: str
    state: RunState
    tasks: list[TaskInstance]
    started: float
    ended: float
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state.value,
            "tasks": [
                {k: v for k, v in t.to_dict().items() if k not in ("duration", "error", "tries")} for t in self.tasks
            ],
        }


@dataclass(frozen=True, slots=True)
class StartedRun:
    run_id: str
    state_machine_arn: str
    execution_arn: str


@dataclass(slots=True)
class RunRequest:
    logical_date: datetime | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    fast_retries: bool = False
    gate_every_task: bool = False  # compile every task behind a gate (tests)
    history_events: int | None = None  # compile for a smaller history quota, not checked (tests)
    run: DagRun | None = None  # a planned run (a backfill's) instead of a manual run at logical_date


class LocalEngine:
    """Use as a context manager; `run()` may be called several times inside it."""

    def __init__(
        self,
        log_level: str = "ERROR",
        state_file: Path | None = None,
        load_state: bool = False,
        names: LocalNames = DEFAULT_NAMES,
        functions: dict[str, services.Handler] | None = None,
    ) -> None:
        """`state_file` keeps local metadata between processes: every run adds its records to it, and
        `airstep runs` / `dags` load it (`load_state`) to query it with the same store code."""
        self.names = names
        self._functions = dict(functions or {})  # Lambda functions of the user's that its DAGs call, by name
        self._log_level = log_level
        self._state_file = state_file
        self._load = load_state
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._watchers: dict[str, _Watcher] = {}  # the runs `run`/`run_many` wait for, by run_id
        # DAGs that runs here may trigger (TriggerDagRunOperator), by id: their models and machines; the
        # executions this engine started itself; those the task runner started, tracked once ended
        self._triggerable: dict[str, tuple[DagModel, str]] = {}
        self._started_here: set[str] = set()
        self._triggered: dict[str, tuple[DagModel, float]] = {}
        self._reported: set[str] = set()
        # (run_id, the runner's answer) of each deadline a run missed: `airstep run` says so
        self.on_deadline: Callable[[str, dict[str, Any]], None] | None = None
        self._arms_deadlines = False  # a DAG deployed here has deadline alerts: look for their schedules
        self._saved_env: dict[str, str | None] = {}
        self._saved_session: boto3.Session | None = None
        # each try's log: beside the local history, or for this engine's life only
        self._scratch_logs = None if state_file else tempfile.TemporaryDirectory(prefix="airstep-logs-")
        self.logs_dir = state_file.parent / LOGS_FOLDER if state_file else Path(self._scratch_logs.name)

    def __enter__(self) -> LocalEngine:
        environment = (
            (EXECUTOR_FUNCTION_ENV, self.names.execute_task),
            (EXECUTOR_MEMORY_ENV, str(DEFAULT_EXECUTOR_MEMORY_MB)),
            ("AWS_DEFAULT_REGION", REGION),
            (TABLE_NAME_ENV, self.names.table),
            (XCOM_BUCKET_ENV, self.names.xcom_bucket),
            (START_RUN_FUNCTION_ENV, self.names.start_run),
        )
        for name, value in environment:
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value
        for name, value in (  # where deadlines are armed: a deployed environment's test sets its own
            (SCHEDULE_GROUP_ENV, f"{self.names.table}-schedules"),
            (SCHEDULER_ROLE_ENV, f"arn:aws:iam::{ACCOUNT}:role/{self.names.table}-scheduler"),
        ):
            self._saved_env[name] = os.environ.get(name)
            os.environ.setdefault(name, value)
        # moto runs each state in a thread, and a runner invocation nests whole Lambda calls inside it
        # (runner -> executor or start-run -> ...): deep enough that CPython 3.11 overran a thread's 8 MB
        # C stack (a segfault in moto's UpdateItem); threads started here get more
        self._saved_stack_size = threading.stack_size(THREAD_STACK_BYTES)
        self._mock.start()
        self._restore_moto = speed_up_moto()
        sync_integrations.CONTAINER_RUNS = self._containers = ContainerRuns(self.logs_dir)
        self._saved_session = boto3.DEFAULT_SESSION
        handlers = {
            self.names.run_task: task_runner.lambda_handler,
            self.names.execute_task: executor.lambda_handler,
            self.names.parse_dags: dag_parser.lambda_handler,
            self.names.compile_dags: compile_dags,
            self.names.start_run: run_starter.lambda_handler,
            self.names.track_runs: run_tracker.lambda_handler,
            self.names.reconcile_runs: run_reconciler.lambda_handler,
            self.names.asset_events: asset_events.lambda_handler,
            **self._functions,
        }
        self._saved_sink = task_logs.configure(task_logs.FileSink(self.logs_dir))
        self.session = LocalSession(handlers, region_name=REGION)
        self.session.memory_mb = {
            self.names.run_task: RUNNER_MEMORY_MB,
            self.names.execute_task: DEFAULT_EXECUTOR_MEMORY_MB,
        }
        boto3.DEFAULT_SESSION = self.session
        registry.reset()
        # Runtime logs (Powertools JSON) go to stderr so stdout stays the command's result;
        # moto's interpreter logs every state failure, which the run result already reports.
        self._saved_log_streams = []
        for runtime_logger in (task_runner.logger, executor.logger):
            runtime_logger.setLevel(self._log_level)
            handler = runtime_logger.registered_handler
            self._saved_log_streams.append((handler, handler.setStream(sys.stderr)))
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self.sfn = boto3.client("stepfunctions")
        self.histories = BackendHistories(self.sfn, ACCOUNT, REGION)  # what the run tracker counts transitions in
        self.scheduler = boto3.client("scheduler")
        with contextlib.suppress(self.scheduler.exceptions.ConflictException):
            self.scheduler.create_schedule_group(Name=os.environ[SCHEDULE_GROUP_ENV])
        self.dynamodb = boto3.client("dynamodb")
        create_table(self.dynamodb, self.names.table)
        self.s3 = boto3.client("s3")
        self.s3.create_bucket(Bucket=self.names.bucket)
        self.s3.put_bucket_versioning(Bucket=self.names.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3.create_bucket(Bucket=self.names.xcom_bucket)
        self._load_state()
        self.store = MetadataStore(self.names.table, client=self.dynamodb)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stop_executions()
            self._save_state()
        finally:  # whatever happened, leave no moto, session, log stream or environment of this engine behind
            self._containers.stop()  # (first: a container may still write its log)
            for handler, stream in reversed(self._saved_log_streams):
                if stream is not None:
                    handler.stream = stream
            task_logs.configure(self._saved_sink)
            if self._scratch_logs is not None:
                self._scratch_logs.cleanup()
            registry.reset()
            boto3.DEFAULT_SESSION = self._saved_session
            sync_integrations.CONTAINER_RUNS = None
            self._restore_moto()
            self._mock.stop()
            threading.stack_size(self._saved_stack_size)
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _stop_executions(self, wait_seconds: float = 5.0) -> None:
        """Abort executions still running (a test that started one and moved on), and give their
        threads a moment to notice: none may outlive the engine and call AWS after moto is gone."""
        running = [
            execution["executionArn"]
            for machine in self.sfn.list_state_machines()["stateMachines"]
            for execution in self.sfn.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )["executions"]
        ]
        for arn in running:
            self.sfn.stop_execution(executionArn=arn, cause="the local engine is closing")
        deadline = time.monotonic() + wait_seconds
        stopped, running = running, list(running)
        while running and time.monotonic() < deadline:
            time.sleep(0.05)
            running = [a for a in running if self.sfn.describe_execution(executionArn=a)["status"] == "RUNNING"]
        for arn in stopped:  # their runs end as the tracker ends an aborted run (failed), even those whose
            description = self.sfn.describe_execution(executionArn=arn)  # task still runs: none outlives us
            if description["status"] == "RUNNING":
                description = {**description, "status": "ABORTED", "stopDate": datetime.now(UTC)}
            run_tracker.track(
                run_tracker.status_event(run_tracker.execution_detail(description)), self.store, self.histories
            )

    def _stored_items(self) -> dict[tuple[str, str], dict[str, Any]]:
        if self._state_file is None or not self._state_file.exists():
            return {}
        items = json.loads(self._state_file.read_text(encoding="utf-8"))["items"]
        return {(i["pk"]["S"], i["sk"]["S"]): i for i in items}

    def _load_state(self) -> None:
        """The local history (`load_state`), or else its pools and assets alone (`airstep pools set`,
        earlier asset events): every run defined there can use them. No execution outlives its
        process: pools start with every slot free and no waiter."""
        for (pk, _), item in self._stored_items().items():
            if pk.startswith(POOL_PREFIX):
                continue
            if pk == POOLS_PK:
                item = {**item, "holders": {"M": {}}, "used": {"N": "0"}}
            elif not self._load and not pk.startswith((ASSET_PREFIX, ASSET_QUEUE_PREFIX)):
                continue
            self.dynamodb.put_item(TableName=self.names.table, Item=item)

    def load_runs(self, keys: list[RunKey]) -> None:
        """Bring these runs' records from the local history (a backfill redoing them clears them)."""
        wanted = {key.pk for key in keys}
        for (pk, _), item in self._stored_items().items() if wanted else ():
            if pk in wanted:
                self.dynamodb.put_item(TableName=self.names.table, Item=item)

    def _load_runs_read_by(self, model: DagModel, starting: set[RunKey]) -> None:
        """An ExternalTaskSensor reads other runs' records: bring those of the DAGs it reads from the
        local history (not the runs being started, which begin afresh)."""
        read = {t.sensor.external_dag_id for t in model.tasks if t.sensor and t.sensor.external_dag_id}
        prefixes = tuple(RunKey(dag_id, "").pk for dag_id in read)
        if not prefixes:
            return
        fresh = {key.pk for key in starting}
        for (pk, _), item in self._stored_items().items():
            if pk.startswith(prefixes) and pk not in fresh:
                self.dynamodb.put_item(TableName=self.names.table, Item=item)

    def _save_state(self) -> None:
        if self._state_file is None:
            return
        scanned = [
            i
            for page in self.store.table.scan()
            for i in page
            if not i["sk"]["S"].startswith((GATE_PREFIX, CONSUMER_PREFIX))  # consumers, watches: registered by each run
            and not i["pk"]["S"].startswith((POOL_PREFIX, RUN_POOLS_PK, WATCHED_BUCKET_PREFIX, WATCHED_QUEUE_PREFIX))
        ]
        rerun = {i["pk"]["S"] for i in scanned if i["sk"]["S"] == RUN_SK}  # a run run again replaces its records
        # assets were loaded: what is left of them now (a consumed queue entry stays consumed)
        stored = self._stored_items()
        rerun |= {pk for pk, _ in stored if pk.startswith((ASSET_PREFIX, ASSET_QUEUE_PREFIX))}
        if self._load:  # `airstep pools ...` (and clear): the pools as they are now, one deleted stays deleted
            rerun.add(POOLS_PK)
        else:  # a run changes no pool: keep them as stored (another command may have set them meanwhile)
            scanned = [i for i in scanned if i["pk"]["S"] != POOLS_PK]
        items = {k: item for k, item in stored.items() if k[0] not in rerun}
        items.update(((i["pk"]["S"], i["sk"]["S"]), i) for i in scanned)
        items = _newest_runs(items, KEEP_RUNS_PER_DAG, KEEP_RUN_RECORDS_PER_DAG)
        _drop_logs_of_dropped_runs(self.logs_dir, stored, items)
        self._keep_models(items)
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": 1, "items": list(items.values())}), encoding="utf-8")
        tmp.replace(self._state_file)

    def _keep_models(self, items: dict[tuple[str, str], dict[str, Any]]) -> None:
        """The graph models the kept DAG records name, beside the history (`airstep ui` draws them)."""
        assert self._state_file is not None
        for (pk, _), item in items.items():
            if not pk.startswith(DAG_PREFIX) or "record" not in item:
                continue
            model = json.loads(item["record"]["S"]).get("model")
            if not model or not model.startswith(f"s3://{self.names.bucket}/"):
                continue
            key = model.split("/", 3)[3]
            path = self._state_file.parent / key
            if not path.exists():
                try:
                    body = self.s3.get_object(Bucket=self.names.bucket, Key=key)["Body"].read()
                except self.s3.exceptions.NoSuchKey:
                    continue  # deployed by another command: that one kept it
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)

    def register_consumers(self, consumers: list[Consumer]) -> None:
        """The DAGs scheduled on assets that this engine's runs may update (locally: the DAG files in
        the producer's folder), as a deploy registers them; not kept in the local history."""
        for consumer in consumers:
            assets.subscribe(self.store, consumer.dag_id, consumer.condition, None)

    def seed_secrets(self, connections: dict[str, Any], variables: dict[str, Any]) -> None:
        """Create connections and variables in moto's Secrets Manager under Airflow's names.

        A connection is a URI string or a JSON object; a variable that is not a string is stored as JSON.
        """
        client = boto3.client("secretsmanager")
        backend = secrets()
        for kind, prefix, entries in (
            ("connection", backend.connections_prefix, connections),
            ("variable", backend.variables_prefix, variables),
        ):
            if entries and prefix is None:
                raise ValueError(f"{kind}s are disabled by an empty prefix")
            for name, value in entries.items():
                text = value if isinstance(value, str) else json.dumps(value)
                client.create_secret(Name=f"{prefix}/{name}", SecretString=text)

    def start(self, model: DagModel, source: DagSource, request: RunRequest | None = None) -> StartedRun:
        """Deploy the DAG here and start a manual run of it (or the request's planned run); the
        tracker hears it start."""
        request = request or RunRequest()
        machine = self.deploy(model, source, request)
        return self._start_run(machine, self._run_of(model, request))

    def _run_of(self, model: DagModel, request: RunRequest) -> DagRun:
        if request.run is not None:
            return request.run
        when = request.logical_date or datetime.now(UTC)
        return manual_run(model.dag_id, when, model.schedule, request.conf, model.timezone)

    def deploy(self, model: DagModel, source: DagSource, request: RunRequest, check_conf: bool = True) -> str:
        """Compile the DAG and create its state machine here; its ARN. A bad conf deploys nothing."""
        self._arms_deadlines = self._arms_deadlines or bool(model.deadlines)
        source = DagSource(source.uri, source.version, models=f"s3://{self.names.bucket}/")
        options = CompileOptions(
            function_name=self.names.run_task,
            region=REGION,
            container=LOCAL_TARGET,
            fast_retries=request.fast_retries,
            gate_every_task=request.gate_every_task,
            **(
                {"limits": Limits(history_events=request.history_events), "check_limits": False}
                if request.history_events
                else {}
            ),
        )
        if check_conf:  # a bad conf writes nothing
            model.resolve_params(request.run.conf if request.run else request.conf)
        compiled = compile_dag(model, source, options)
        services.provide(model, REGION)
        self.s3.put_object(Bucket=self.names.bucket, Key=model.storage_key(), Body=model.to_json().encode())
        if model.dag_id in self._triggerable:  # deployed already, for the runs others trigger: keep it
            machine = self._triggerable[model.dag_id][1]
            self.sfn.update_state_machine(stateMachineArn=machine, definition=compiled.definition_json)
        else:
            machine = self.sfn.create_state_machine(
                name=model.dag_id[:STATE_MACHINE_NAME_CHARS],
                definition=compiled.definition_json,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/airstep-local-state-machine",
            )["stateMachineArn"]
        self.store.put_dag(dag_record(model, source, machine, schedule_name=None))
        return machine

    def deploy_triggerable(self, dags: list[tuple[DagModel, DagSource]], request: RunRequest) -> list[str]:
        """Deploy the DAGs that runs here may trigger (TriggerDagRunOperator), as compile-dags deploys
        a folder: the task runner starts their runs on this engine, and `triggered_results` reports
        them once they have ended. A DAG that does not compile is left out (as compile-dags leaves it,
        an import error): why, for each."""
        skipped = []
        for model, source in dags:
            try:
                machine = self.deploy(model, source, request, check_conf=False)
            except CompileError as exc:
                skipped.append(str(exc))
                continue
            self._triggerable[model.dag_id] = (model, machine)
        return skipped

    def triggered_results(self) -> list[RunResult]:
        """Wait for the runs the task runner started here (and those they start) to end, and return
        those not reported before, in the order they were seen."""
        while True:
            tracked, running = self._track_triggered()
            if not tracked and not running:  # (an end tracked may have started a queued run: look again)
                break
            time.sleep(0.02)
        fresh = [arn for arn in self._triggered if arn not in self._reported]
        self._reported.update(fresh)
        return [self._triggered_result(arn) for arn in fresh]

    def _track_triggered(self) -> tuple[int, int]:
        """Tell the tracker of each run the task runner started here that has ended (once), as
        EventBridge would, so that its slot frees while other runs go on; how many ended now, and
        how many still run."""
        tracked = running = 0
        for model, machine in self._triggerable.values():
            for execution in self.sfn.list_executions(stateMachineArn=machine)["executions"]:
                arn = execution["executionArn"]
                if arn in self._started_here or arn in self._triggered:
                    continue
                if execution["status"] == "RUNNING":
                    running += 1
                    continue
                self._track(arn)
                self._triggered[arn] = (model, time.monotonic())
                tracked += 1
        return tracked, running

    def _triggered_result(self, arn: str) -> RunResult:
        model, seen = self._triggered[arn]
        description = self.sfn.describe_execution(executionArn=arn)
        run_id = DagRun.from_input(json.loads(description["input"])).run_id
        took = (description["stopDate"] - description["startDate"]).total_seconds()
        return dataclasses.replace(self._result(model, run_id, description, seen - took), ended=seen)

    def _start_run(self, machine: str, run: DagRun) -> StartedRun:
        execution = self.sfn.start_execution(
            stateMachineArn=machine, name=execution_name(run.run_id, run.clear_number), input=json.dumps(run.to_input())
        )["executionArn"]
        self._started_here.add(execution)
        self._track(execution)  # moto emits no status events: feed the tracker as EventBridge would
        return StartedRun(run.run_id, machine, execution)

    def run(
        self,
        model: DagModel,
        source: DagSource,
        request: RunRequest,
        on_progress: Progress | None = None,
    ) -> RunResult:
        """Run one DAG to completion. `on_progress(task_id, state, try_number)` hears each change."""
        request = dataclasses.replace(request, logical_date=request.logical_date or datetime.now(UTC))
        run = self._run_of(model, request)
        progress = (lambda _run_id, *change: on_progress(*change)) if on_progress else None
        (result,) = self.run_many(model, source, request, [run], 1, progress)
        return result

    def run_many(
        self,
        model: DagModel,
        source: DagSource,
        request: RunRequest,
        runs: list[DagRun],
        max_active: int,
        on_progress: RunProgress | None = None,
        on_end: Callable[[RunResult], None] | None = None,
        prepare: Callable[[DagRun], DagRun] | None = None,
    ) -> list[RunResult]:
        """Run planned runs of one DAG to completion, in order, at most `max_active` at once (a
        backfill). `on_progress(run_id, task_id, state, try_number)` hears each task's change and
        `on_end` each run's end, and `prepare` may change a run just before it starts (a backfill
        clears a run it redoes); results come in the order of `runs`."""
        keys = {RunKey(model.dag_id, run.run_id) for run in runs}
        self._load_runs_read_by(model, keys)
        machine = self.deploy(model, source, request)
        self.session.listener = self._dispatch
        waiting, active, results = list(reversed(runs)), {}, {}
        try:
            while waiting or active:
                while waiting and len(active) < max_active:
                    run = waiting.pop()
                    run = prepare(run) if prepare else run
                    finalized = threading.Event()
                    key = RunKey(model.dag_id, run.run_id)
                    watch = (lambda *change, run_id=run.run_id: on_progress(run_id, *change)) if on_progress else None
                    self._watchers[run.run_id] = _Watcher(self.names.run_task, self.store, key, finalized, watch)
                    active[run.run_id] = (self._start_run(machine, run), finalized, time.monotonic())
                ended = self._wait_any(active)
                started, _, began = active.pop(ended)
                self._watchers.pop(ended, None)
                description = self.sfn.describe_execution(executionArn=started.execution_arn)
                self._track(started.execution_arn)
                if model.deadlines:  # its deadlines not yet come: decided now, as their schedules would be
                    self._fire_deadlines(until=None, run=(model.dag_id, ended))
                results[ended] = self._result(model, ended, description, began)
                if on_end is not None:
                    on_end(results[ended])
        finally:
            self.session.listener = None
            self._watchers.clear()
        if model.dag_id not in self._triggerable:  # (one that others may trigger stays)
            self.sfn.delete_state_machine(stateMachineArn=machine)
        return [results[run.run_id] for run in runs]

    def _dispatch(self, function: str, event: dict[str, Any], result: Any, error: str | None, finished: bool) -> None:
        """The session's listener while runs are watched: each task-runner call to its run's watcher."""
        if function == self.names.run_task:
            watcher = self._watchers.get(event.get(CTX, {}).get(RUN, {}).get("run_id"))
            if watcher is not None:
                watcher(function, event, result, error, finished)

    def _fire_deadlines(self, until: datetime | None, run: tuple[str, str] | None = None) -> None:
        """Do what EventBridge Scheduler does with the deadlines armed here: invoke each schedule's
        target with its input once its moment has come (by `until`; None: every one of `run`, a
        (dag_id, run_id) that has ended), then delete it. `on_deadline` hears each missed one; a
        delivery that fails is retried at the next look, as the service retries it."""
        group = os.environ[SCHEDULE_GROUP_ENV]
        listed = self.scheduler.list_schedules(GroupName=group, NamePrefix=deadline_alerts.SCHEDULE_PREFIX)["Schedules"]
        for summary in listed:
            schedule = self.scheduler.get_schedule(Name=summary["Name"], GroupName=group)
            event = json.loads(schedule["Target"]["Input"])
            moment = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]).replace(tzinfo=UTC)
            of_run = (event[CTX][RUN]["dag_id"], event[CTX][RUN]["run_id"])
            if (until is not None and moment > until) or (until is None and of_run != run):
                continue
            try:
                decided = self.session.invoke_locally(self.names.run_task, event)
            except Exception as exc:  # noqa: BLE001 - as a failed delivery: the schedule stays
                logging.getLogger(__name__).warning("deadline %s: %s", summary["Name"], exc)
                continue
            self.scheduler.delete_schedule(Name=summary["Name"], GroupName=group)
            if decided.get("outcome") == deadline_alerts.MISSED and self.on_deadline is not None:
                self.on_deadline(of_run[1], decided)

    def _wait_any(self, active: dict[str, tuple[StartedRun, threading.Event, float]]) -> str:
        """The run_id of an active run whose execution has ended: polled closely once its finalize
        step ran, cheaply before. Deadlines whose moment has come fire meanwhile (looked for four
        times a second)."""
        looked = 0.0
        while True:
            if self._arms_deadlines and time.monotonic() - looked > DEADLINE_LOOK_SECONDS:
                self._fire_deadlines(until=datetime.now(UTC))
                looked = time.monotonic()
            for run_id, (started, _, _) in active.items():
                if self.sfn.describe_execution(executionArn=started.execution_arn)["status"] != "RUNNING":
                    return run_id
            if self._triggerable:  # a run may wait for one it triggered, and that one for a slot
                self._track_triggered()
            if any(finalized.is_set() for _, finalized, _ in active.values()):
                time.sleep(0.01)
            else:
                next(iter(active.values()))[1].wait(0.25 / len(active))

    def _result(self, model: DagModel, run_id: str, description: dict[str, Any], began: float) -> RunResult:
        key = RunKey(model.dag_id, run_id)
        record = self.store.get_run(key)
        state = record.state if record else RunState.FAILED
        error = description.get("cause") or description.get("error")
        if description["status"] == "TIMED_OUT":
            error = "the run took longer than its dagrun_timeout"
        if description["status"] == "SUCCEEDED" and state is not RunState.SUCCESS:
            state, error = RunState.FAILED, "the state machine succeeded but the run record disagrees"
        order = {t.task_id: i for i, t in enumerate(model.tasks)}
        tasks = sorted(self.store.task_instances(key), key=lambda t: (order.get(t.task_id, len(order)), t.map_index))
        recorded = {t.task_id for t in tasks}
        tasks += [TaskInstance(t.task_id, -1, None, 0) for t in model.tasks if t.task_id not in recorded]
        return RunResult(model.dag_id, run_id, state, tasks, began, time.monotonic(), error)

    def _track(self, execution: str) -> None:
        """Tell the run tracker an execution's status, and what its end sets off, as EventBridge would."""
        description = self.sfn.describe_execution(executionArn=execution)
        event = run_tracker.status_event(run_tracker.execution_detail(description))
        tracked = run_tracker.track(event, self.store, self.histories)
        run_tracker.after_end(event, tracked, self.store, self.sfn, boto3.client("lambda"))

    def finish(self, started: StartedRun, poll_seconds: float = 0.05) -> dict[str, Any]:
        """Wait for a started run's execution to end, tell the tracker, and return its description."""
        while (description := self.sfn.describe_execution(executionArn=started.execution_arn))["status"] == "RUNNING":
            time.sleep(poll_seconds)
        self._track(started.execution_arn)
        return description


def _drop_logs_of_dropped_runs(
    root: Path, stored: dict[tuple[str, str], dict[str, Any]], kept: dict[tuple[str, str], dict[str, Any]]
) -> None:
    """The tries' logs of runs the local history had and no longer keeps go with them (never those
    of a run another command is still running: the history has not had it yet)."""

    def runs(items: dict[tuple[str, str], dict[str, Any]]) -> set[tuple[str, str]]:
        return {(i["dag_id"]["S"], i["run_id"]["S"]) for (_, sk), i in items.items() if sk == RUN_SK and "run_id" in i}

    for dag_id, run_id in runs(stored) - runs(kept):
        shutil.rmtree(task_logs.run_folder(root, dag_id, run_id), ignore_errors=True)


def _newest_runs(
    items: dict[tuple[str, str], dict[str, Any]], whole: int, records: int
) -> dict[tuple[str, str], dict[str, Any]]:
    """Local history with each DAG's newest `whole` runs and their task instances, and the run records
    alone of its next newest up to `records`."""
    runs_by_dag: dict[str, list[tuple[str, str]]] = {}
    for (pk, sk), item in items.items():
        if sk == RUN_SK:
            started = item.get("start_date", {}).get("S", "")
            runs_by_dag.setdefault(item.get("dag_id", {}).get("S", ""), []).append((started, pk))
    newest = [[pk for _, pk in sorted(runs, reverse=True)] for runs in runs_by_dag.values()]
    trimmed = {pk for runs in newest for pk in runs[whole:records]}
    dropped = {pk for runs in newest for pk in runs[records:]}
    return {
        key: item
        for key, item in items.items()
        if key[0] not in dropped and (key[0] not in trimmed or key[1] == RUN_SK)
    }


class _Watcher:
    """Hears every task-runner invocation of one run: reports progress, notices the finalize step."""

    def __init__(
        self,
        runner: str,
        store: MetadataStore,
        key: RunKey,
        finalized: threading.Event,
        on_progress: Progress | None,
    ) -> None:
        self.runner = runner
        self.store = store
        self.key = key
        self.finalized = finalized
        self.on_progress = on_progress
        self.reported: set[str] = set()  # instances reported as skipped (not to report twice)

    def _report_skips(self, by: str) -> None:
        """The skips a task recorded for the stretches its guards bypass (after the task's own)."""
        assert self.on_progress is not None
        recorded = self.store.task_instances(self.key)
        skips = [ti for ti in recorded if ti.state is TaskState.SKIPPED and ti.try_number == 0]
        for ti in skips:
            if ti.label not in self.reported and ti.task_id != by:
                self.reported.add(ti.label)
                self.on_progress(ti.label, TaskState.SKIPPED, 0)

    def __call__(self, function: str, event: dict[str, Any], result: Any, error: str | None, finished: bool) -> None:
        if function != self.runner:  # the executor: the runner reports what its tries did
            return
        payload = Payload.from_event(event)
        if payload.action is Action.FINALIZE:
            if finished:
                self.finalized.set()
            return
        if (
            self.on_progress is None
            or payload.action in (Action.GATE, Action.SIGNAL, Action.ACQUIRE)
            or payload.task_id is None
        ):
            return
        if payload.action is Action.EXPAND:  # only a mapped task settled as a whole has news
            if not finished or not isinstance(result, dict) or expanded(result):
                return
        if not finished:
            if payload.action is Action.RUN:
                label = payload.task_id if payload.map_index < 0 else f"{payload.task_id}[{payload.map_index}]"
                self.on_progress(label, TaskState.RUNNING, 0)
            return
        outcome = TaskOutcome.from_dict(result)
        if outcome is not None and outcome.call is not None:  # an AWS call begins: its start was said
            return
        if outcome is not None:
            if outcome.state is TaskState.SKIPPED:
                self.reported.add(outcome.label)
            self.on_progress(outcome.label, outcome.state, outcome.try_number)
            if outcome.bypass and any(outcome.bypass.values()):  # it recorded skips for paths never entered
                self._report_skips(outcome.task_id)
            return
        # A failed try: the store says whether it will be retried.
        if payload.map_index < 0:
            ti = self.store.get_task_instances(self.key, [payload.task_id]).get(payload.task_id)
        else:
            _, instances = self.store.get_mapped(self.key, payload.task_id)
            ti = next((i for i in instances if i.map_index == payload.map_index), None)
        if ti is not None and ti.state is not None:
            self.on_progress(ti.label, ti.state, ti.try_number)
