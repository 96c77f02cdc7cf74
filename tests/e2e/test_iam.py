"""Every function's code runs under the policy template.yaml gives its role (SAM-translated): a call
the template does not allow fails this test, and so does a permission the template grants that no
code path uses. The whole deployed path runs in moto; tests/iam.py evaluates each call."""

from __future__ import annotations

import contextlib
import json
import runpy
import threading
import time
from collections import Counter
from datetime import timedelta

import boto3
import pytest

from airstep.runtime import assets, executor
from airstep.runtime.audit import AUDIT_LOG_GROUP_ENV, CloudWatchAuditLog, Via
from airstep.runtime.run_tracker import execution_detail, status_event
from airstep.runtime.store import RunKey
from airstep.runtime.store.assets import AssetEvent, bucket_source
from airstep.runtime.store.pools import Claim
from airstep_cli.assets import queue_message
from airstep_local.engine import ACCOUNT, REGION, LocalEngine, LocalNames, RunRequest
from airstep_local.faults import THROTTLED, Faults
from deployed import moto_function
from helpers import ROOT, load_model
from iam import DAG_ROLE, MANAGED, ROLES, STATE_MACHINES, Request, allowing, iam_requests, policies, principal_of

NAMES = LocalNames.of_stack("dev")
AUDIT_GROUP = "/airstep/dev/audit"
UPLOADER = "AWS:AIDAEXAMPLEUPLOADER"
ROLE = f"arn:aws:iam::{ACCOUNT}:role"
# Granted for AWS services, never for our code: EventBridge Scheduler invokes start-run and the
# reconciler with these roles and writes undeliverable events to the dead-letter queue (moto's
# schedules never fire); Lambda sends an asynchronous event that failed every attempt to the failed-
# events queue with the function's own role (SAM adds that statement for the on-failure destination).
USED_BY_AWS_ONLY = {
    ("SchedulerRole", "lambda:InvokeFunction"),
    ("SchedulerRole", "sqs:SendMessage"),
    ("ReconcileRunsFunctionEveryTenMinutesRole", "lambda:InvokeFunction"),
    *(
        (f"{name}Function", "sqs:SendMessage")
        for name in ("CompileDags", "StartRun", "TrackRuns", "ReconcileRuns", "AssetEvents")
    ),
    # Step Functions starts, watches and stops a Distributed Map's child executions with the machines'
    # role; moto runs the children inside the parent's interpreter, without these calls.
    (STATE_MACHINES, "states:StartExecution"),
    (STATE_MACHINES, "states:DescribeExecution"),
    (STATE_MACHINES, "states:StopExecution"),
    # Lambda polls a watched queue, and deletes what the function recorded, with the function's role
    ("AssetEventsFunction", "sqs:ReceiveMessage"),
    ("AssetEventsFunction", "sqs:DeleteMessage"),
    ("AssetEventsFunction", "sqs:GetQueueAttributes"),
    # A container try's Fargate task: Step Functions watches it through its EventBridge rule (and stops
    # it at its time limit), ECS starts it with the execution role (its log stream); the image's
    # bootstrap downloads the runtime's layers (locally, the child runs the runtime of this checkout)
    (STATE_MACHINES, "ecs:DescribeTasks"),
    (STATE_MACHINES, "ecs:StopTask"),
    (STATE_MACHINES, "events:PutTargets"),
    (STATE_MACHINES, "events:PutRule"),
    (STATE_MACHINES, "events:DescribeRule"),
    ("ContainerExecutionRole", "logs:CreateLogStream"),
    ("ContainerExecutionRole", "logs:PutLogEvents"),
    ("ContainerTaskRole", "lambda:GetLayerVersion"),
}
INBOX_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:airstep-dev-inbox"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:finished"
# The platform team's boundary for DAGs' own roles (the stack's DagBoundaryResources): the lake, one topic
DAG_RESOURCES = ["arn:aws:s3:::lake*", TOPIC_ARN]
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/airstep-dev-dag-boundary-{REGION}"
SHARED_POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/airstep-dev-state-machines-{REGION}"

N_SHAPE = """
from datetime import datetime
from airstep import DAG, Connection, PythonOperator, Variable
from common.naming import label

def work(name, ti=None):
    Connection.get("warehouse")
    if name == "a":  # too large for a record: written to the XCom bucket, and read from it by c
        return "x" * 40_000
    if name == "c":  # (in a container: its own large XCom too)
        assert len(ti.xcom_pull(task_ids="a")) == 40_000
        return "y" * 40_000
    if name == "b":  # ... and b's, which d reads on Lambda
        return "z" * 40_000
    if name == "d":
        assert len(ti.xcom_pull(task_ids="b")) == 40_000
    return f"{label(name)} in {Variable.get('env')}"

with DAG("n_shape", schedule="0 2 * * *", start_date=datetime(2026, 1, 1), max_active_runs=1):
    executors = {"c": "AwsEcsExecutor"}  # c's tries run in a container
    a, b, c, d = (
        PythonOperator(task_id=t, python_callable=work, executor=executors.get(t), op_args=[t]) for t in "abcd"
    )
    [a, b] >> c
    b >> d
    # more instances than one inline wave: a Distributed Map reads their indexes from the XCom bucket
    PythonOperator.partial(task_id="fan", python_callable=work).expand(op_args=[[f"f{i}"] for i in range(45)])
"""


DEADLINE = """
import time
from datetime import datetime, timedelta
from airstep import DAG, PythonOperator

with DAG("deadline", schedule="0 2 * * *", start_date=datetime(2030, 1, 1), dagrun_timeout=timedelta(seconds=1)):
    slow = PythonOperator(task_id="slow", python_callable=lambda: time.sleep(2))
    slow >> PythonOperator(task_id="after", python_callable=lambda: None)
"""


ALERTED = """
import time
from datetime import datetime, timedelta
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback


def page_the_team(context=None, **kwargs):
    print("missed", context["deadline"]["deadline_time"])


late = DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, timedelta(seconds=1), SyncCallback(page_the_team))
with DAG("alerted", schedule="0 2 * * *", start_date=datetime(2030, 1, 1), deadline=late):
    PythonOperator(task_id="slow", python_callable=lambda: time.sleep(2))
"""


POOLED = """
import time
from datetime import datetime
from airstep import DAG, PythonOperator

with DAG("pooled", schedule="0 2 * * *", start_date=datetime(2030, 1, 1), max_active_tasks=3):
    for name in ("one", "two"):
        PythonOperator(task_id=name, python_callable=lambda: time.sleep(0.2), pool="warehouse")
    PythonOperator(task_id="lost", python_callable=lambda: None, pool="nowhere")
"""


PRODUCER = """
from datetime import datetime
from airstep import DAG, Asset, PythonOperator

with DAG("producer", schedule="0 2 * * *", start_date=datetime(2030, 1, 1)):
    PythonOperator(task_id="write", python_callable=lambda: 1, outlets=[Asset("orders")])
"""

CONSUMER = """
from datetime import datetime
from airstep import DAG, Asset, PythonOperator

with DAG("consumer", schedule=[Asset("orders")], start_date=datetime(2030, 1, 1), is_paused_upon_creation=False):
    PythonOperator(task_id="read", python_callable=lambda: 2)
"""

LAKE = """
from datetime import datetime
from airstep import DAG, Asset, PythonOperator

with DAG("lake", schedule=[Asset("s3://lake/orders")], start_date=datetime(2030, 1, 1), is_paused_upon_creation=False):
    PythonOperator(task_id="load", python_callable=lambda triggering_asset_events: [
        e.source["key"] for events in triggering_asset_events.values() for e in events
    ])
"""

CALLS = f"""
from datetime import datetime
from airflow.sdk import DAG, task
from airflow.providers.amazon.aws.operators.s3 import S3CreateObjectOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

with DAG("calls", schedule="0 2 * * *", start_date=datetime(2030, 1, 1)):
    key = "s3://lake/in/{{{{ ds }}}}.csv"
    write = S3CreateObjectOperator(task_id="write", s3_key=key, data="a,b", replace=True)
    landed = S3KeySensor(task_id="landed", bucket_key=key, poke_interval=1, timeout=30)
    write >> landed >> SnsPublishOperator(task_id="tell", target_arn="{TOPIC_ARN}", message="done")

    @task(executor="AwsEcsExecutor")  # its container runs with the environment's task role, not the DAG's
    def summarise():
        return "summary"

    landed >> summarise()
"""

INBOX = f"""
from datetime import datetime
from airstep import DAG, Asset, AssetWatcher, MessageQueueTrigger, PythonOperator

queue = "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/airstep-dev-inbox"
inbox = Asset("inbox", watchers=[AssetWatcher("inbox_watcher", MessageQueueTrigger(scheme="sqs", sqs_queue=queue))])

with DAG("inbox", schedule=[inbox], start_date=datetime(2030, 1, 1), is_paused_upon_creation=False):
    PythonOperator(task_id="read", python_callable=lambda triggering_asset_events: [
        m["Body"] for e in triggering_asset_events[inbox] for m in e.extra["payload"]["message_batch"]
    ])
"""

TARGET = """
from datetime import datetime
from airflow.sdk import DAG, Param
from airflow.providers.standard.operators.python import PythonOperator

with DAG("target", schedule=None, start_date=datetime(2030, 1, 1), params={"n": Param(1, type="integer")}):
    PythonOperator(task_id="double", python_callable=lambda params: params["n"] * 2)
"""

CONTROLLER = """
from datetime import datetime
from airstep import DAG, TriggerDagRunOperator

with DAG("controller", schedule="0 2 * * *", start_date=datetime(2030, 1, 1)):
    TriggerDagRunOperator(
        task_id="kick", trigger_dag_id="target", conf={"n": 21}, wait_for_completion=True, poke_interval=1
    )
"""


def object_created(bucket, key, sequencer):
    """The event S3 sends EventBridge when an object is created (the key form-encoded)."""
    detail = {
        "bucket": {"name": bucket},
        "object": {"key": key, "size": 5, "sequencer": sequencer},
        "reason": "PutObject",
    }
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "id": sequencer,
        "time": "2026-11-21T06:00:00Z",
        "detail": detail,
    }


@pytest.fixture
def stack(monkeypatch):
    with _stack(monkeypatch) as engine:
        yield engine


@contextlib.contextmanager
def _stack(monkeypatch, **environment_overrides):
    """The dev stack's functions, in moto, with the environment template.yaml gives them."""
    functions = environment_overrides.pop("functions", None)
    environment = {
        "AIRSTEP_ENVIRONMENT": "dev",
        "AIRSTEP_TASK_RUNNER_ARN": NAMES.function_arn(NAMES.run_task),
        "AIRSTEP_STATE_MACHINE_ROLE_ARN": f"{ROLE}/airstep-dev-state-machines-{REGION}",
        "AIRSTEP_START_RUN_ARN": NAMES.function_arn(NAMES.start_run),
        "AIRSTEP_ASSET_RUNS_FUNCTION": NAMES.function_arn(NAMES.start_run),
        "AIRSTEP_START_RUN_FUNCTION": NAMES.function_arn(NAMES.start_run),
        "AIRSTEP_SCHEDULER_ROLE_ARN": f"{ROLE}/airstep-dev-scheduler-{REGION}",
        "AIRSTEP_SCHEDULE_GROUP": "airstep-dev",
        "AIRSTEP_SCHEDULE_DLQ_ARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:airstep-dev-schedule-dlq",
        "AIRSTEP_PARSER_FUNCTION": NAMES.parse_dags,
        "AIRSTEP_EXECUTOR_FUNCTION": NAMES.execute_task,
        "AIRSTEP_DAG_PREFIX": "dags/",
        "AIRSTEP_CONNECTIONS_PREFIX": "airflow/dev/connections",
        "AIRSTEP_VARIABLES_PREFIX": "airflow/dev/variables",
        "AIRSTEP_ASSET_EVENTS_ARN": NAMES.function_arn(NAMES.asset_events),
        "AIRSTEP_ASSET_QUEUES": INBOX_ARN,
        AUDIT_LOG_GROUP_ENV: AUDIT_GROUP,
        "AIRSTEP_DAG_BOUNDARY_ARN": BOUNDARY_ARN,
        "AIRSTEP_STATE_MACHINE_POLICY_ARN": SHARED_POLICY_ARN,
        "AIRSTEP_DAG_BOUNDARY_ACTIONS": "s3:*,sns:Publish,glue:*",
        "AIRSTEP_DAG_BOUNDARY_RESOURCES": ",".join(DAG_RESOURCES),
        "AIRSTEP_CONTAINER_CLUSTER": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/airstep-dev",
        "AIRSTEP_CONTAINER_TASK_DEFINITION": "airstep-dev-runner",
        "AIRSTEP_CONTAINER_SUBNETS": "subnet-0a1b2c3d",
    }
    for name, value in {**environment, **environment_overrides}.items():
        monkeypatch.setenv(name, value)
    with LocalEngine(names=NAMES, functions=functions) as engine:
        boto3.client("sqs").create_queue(QueueName="airstep-dev-schedule-dlq")
        boto3.client("sqs").create_queue(QueueName="airstep-dev-inbox")
        boto3.client("logs").create_log_group(logGroupName=AUDIT_GROUP)
        for arn in (BOUNDARY_ARN, SHARED_POLICY_ARN):  # the stack's managed policies (their statements: tests/iam.py)
            document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            boto3.client("iam").create_policy(PolicyName=arn.rsplit("/", 1)[1], PolicyDocument=json.dumps(document))
        moto_function(NAMES.asset_events)  # a queue's event source mapping needs the function to exist
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name="airflow/dev/connections/warehouse", SecretString="postgresql://u:pw@db:5432/x")
        secrets.create_secret(Name="airflow/dev/variables/env", SecretString="dev")
        engine.session.calls = []
        yield engine


def s3_event(key, removed=False):
    record = {
        "eventName": "ObjectRemoved:Delete" if removed else "ObjectCreated:Put",
        "userIdentity": {"principalId": UPLOADER},
        "s3": {"bucket": {"name": NAMES.bucket}, "object": {"key": key}},
    }
    return {"Records": [record]}


def put(engine, key, text):
    engine.s3.put_object(Bucket=NAMES.bucket, Key=key, Body=text.encode())
    return engine.session.invoke_locally(NAMES.compile_dags, s3_event(key))


@contextlib.contextmanager
def freeze_reconciler_clock(minutes):
    """The reconciler leaves runs alone for a grace period; run it as if `minutes` had passed."""
    from airstep.runtime import run_reconciler

    original = run_reconciler.GRACE
    run_reconciler.GRACE = original - timedelta(minutes=minutes)
    try:
        yield
    finally:
        run_reconciler.GRACE = original


def test_every_call_is_allowed_and_every_permission_is_used(stack, monkeypatch):
    engine = stack
    engine.s3.put_object(Bucket=NAMES.bucket, Key="dags/common/__init__.py", Body=b"")
    engine.s3.put_object(
        Bucket=NAMES.bucket, Key="dags/common/naming.py", Body=b"def label(t):\n    return t.upper()\n"
    )
    deployed = put(engine, "dags/n_shape.py", N_SHAPE)["files"][0]
    assert deployed["outcome"] == "deployed"
    # its first deploy started the latest run it missed (no catchup): its end frees the DAG's only slot
    (caught_up,) = deployed["dags"][0]["caught_up"]
    arn = engine.store.get_run(RunKey("n_shape", caught_up)).execution_arn
    while engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.02)
    ended = execution_detail(engine.sfn.describe_execution(executionArn=arn))
    assert engine.session.invoke_locally(NAMES.track_runs, status_event(ended))["tracked"]

    # the schedule fires (EventBridge Scheduler invokes start-run); one try of the executor is refused
    # once (throttled), so the runner takes the try back and Step Functions retries it
    throttled = Counter()
    deciding = threading.Lock()  # tries run in parallel threads: only one may be the throttled one

    def throttle_once(function, event):
        with deciding:
            if function == NAMES.execute_task and not event.get("measure") and not throttled:  # a try
                throttled["executor"] += 1
                return THROTTLED
        return None

    engine.session.faults = Faults(invoke=throttle_once)
    monkeypatch.setattr(executor, "MAX_REQUEST_BYTES", 100)  # every request with upstream XComs: via the bucket
    target = boto3.client("scheduler").get_schedule(Name="airstep-dev-n_shape", GroupName="airstep-dev")["Target"]
    fired = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", "2026-11-21T02:00:00Z"))

    def fire(day):
        return engine.session.invoke_locally(NAMES.start_run, {**fired, "scheduled_time": f"2026-11-{day}T02:00:00Z"})

    def wait(arn):
        while engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            time.sleep(0.02)
        return engine.sfn.describe_execution(executionArn=arn)

    started = fire(21)
    # while it runs (its slot is held until track-runs hears it end), two more fire: both wait queued
    assert [fire(day)["state"] for day in (22, 23)] == ["queued", "queued"]
    description = wait(started["execution_arn"])
    instances = engine.store.task_instances(RunKey("n_shape", started["run_id"]))
    assert description["status"] == "SUCCEEDED", [(ti.task_id, ti.state, ti.error) for ti in instances]
    tracked = engine.session.invoke_locally(NAMES.track_runs, status_event(execution_detail(description)))
    # the slot frees; without catchup the newest queued scheduled run starts and the older one is dropped
    assert tracked["tracked"] and tracked["started"] == ["scheduled__2026-11-23T02:00:00+00:00"]
    assert throttled["executor"] == 1

    # a run whose status events were all lost, while two more runs queue behind it: the reconciler
    # gives its slot back and starts the newest, then settles it once its grace period is over
    third = engine.store.get_run(RunKey("n_shape", "scheduled__2026-11-23T02:00:00+00:00"))
    wait(third.execution_arn)
    assert [fire(day)["state"] for day in (24, 25)] == ["queued", "queued"]
    with freeze_reconciler_clock(minutes=11):
        reconciled = engine.session.invoke_locally(NAMES.reconcile_runs, {})
    assert reconciled["started"] == ["scheduled__2026-11-25T02:00:00+00:00"]
    assert [(s["run_id"], s["status"]) for s in reconciled["settled"]] == [(third.run_id, "SUCCEEDED")]

    # a run past its dagrun_timeout: Step Functions times it out, and its runner (invoked by track-runs,
    # or by reconcile-runs when the event is lost) skips what was unfinished
    assert put(engine, "dags/deadline.py", DEADLINE)["files"][0]["outcome"] == "deployed"
    target = boto3.client("scheduler").get_schedule(Name="airstep-dev-deadline", GroupName="airstep-dev")["Target"]
    deadline_fired = json.loads(target["Input"])
    for day, lost in ((21, False), (22, True)):
        late = engine.session.invoke_locally(
            NAMES.start_run, {**deadline_fired, "scheduled_time": f"2026-11-{day}T02:00:00Z"}
        )
        description = wait(late["execution_arn"])
        assert description["status"] == "TIMED_OUT"
        if lost:
            with freeze_reconciler_clock(minutes=11):
                settled = engine.session.invoke_locally(NAMES.reconcile_runs, {})["settled"]
            assert [s.get("timed_out") for s in settled if s["dag_id"] == "deadline"] == [True]
        else:
            ended = engine.session.invoke_locally(NAMES.track_runs, status_event(execution_detail(description)))
            assert ended["timed_out"]
        run_id = f"scheduled__2026-11-{day}T02:00:00+00:00"
        states = {ti.task_id: ti.state for ti in engine.store.task_instances(RunKey("deadline", run_id))}
        assert states == {"slow": "skipped", "after": "skipped"}

    # a deadline alert: the run's first step arms a one-off schedule (the task runner, passing the
    # scheduler role); when it fires (EventBridge Scheduler, with that role) the runner decides it: the
    # run had not ended by its deadline, so it is missed, once, and its callback runs on the executor
    assert put(engine, "dags/alerted.py", ALERTED)["files"][0]["outcome"] == "deployed"
    scheduler = boto3.client("scheduler")
    target = scheduler.get_schedule(Name="airstep-dev-alerted", GroupName="airstep-dev")["Target"]
    alerted = engine.session.invoke_locally(
        NAMES.start_run, {**json.loads(target["Input"]), "scheduled_time": "2026-11-21T02:00:00Z"}
    )
    assert wait(alerted["execution_arn"])["status"] == "SUCCEEDED"
    (armed,) = scheduler.list_schedules(GroupName="airstep-dev", NamePrefix="deadline-")["Schedules"]
    fired = json.loads(scheduler.get_schedule(Name=armed["Name"], GroupName="airstep-dev")["Target"]["Input"])
    assert engine.session.invoke_locally(NAMES.run_task, fired)["outcome"] == "missed"
    assert engine.session.invoke_locally(NAMES.run_task, fired)["outcome"] is None  # delivered again: nothing

    # pooled tasks: two share one slot (one waits, as a stored task token, and starts when the other
    # gives it back); one names a pool that does not exist and fails saying so; the run's own pool
    # (max_active_tasks) is made by its first task and goes when the run ends
    engine.store.set_pool("warehouse", 1)
    assert put(engine, "dags/pooled.py", POOLED)["files"][0]["outcome"] == "deployed"
    target = boto3.client("scheduler").get_schedule(Name="airstep-dev-pooled", GroupName="airstep-dev")["Target"]
    pooled = engine.session.invoke_locally(
        NAMES.start_run, {**json.loads(target["Input"]), "scheduled_time": "2026-11-21T02:00:00Z"}
    )
    assert wait(pooled["execution_arn"])["status"] == "FAILED"
    states = {
        ti.task_id: (ti.state, ti.error) for ti in engine.store.task_instances(RunKey("pooled", pooled["run_id"]))
    }
    assert states["one"][0] == states["two"][0] == "success"
    assert states["lost"] == (
        "failed",
        "pool 'nowhere' does not exist: create it with `airstep pools set nowhere SLOTS`",
    )
    assert engine.store.list_pools(runs=True) == []
    # the reconciler gives back the slots of an execution that ended without doing so, and starts
    # (or, when the pool is too small for it, fails) the waiters behind them
    # ... moves a waiter that has its run's slot on to wait for its task's pool, and deletes the own
    # pool of a run whose execution has ended
    gone = pooled["execution_arn"].rsplit(":", 1)[0] + ":long-gone"  # ended long ago: no longer described
    ended = pooled["execution_arn"]  # ended 11 minutes ago: a try may still run, its slots stay held
    warehouse, lake, own = Claim("warehouse", 1), Claim("lake", 1), Claim("max_active_tasks:pooled:0:r", 1, 2)
    engine.store.take_claims((warehouse,), "gone#run#0#t", gone, "tag")
    engine.store.add_waiter("warehouse", (Claim("warehouse", 5),), "1", "big#run#0#t", "token-big", ended)
    engine.store.add_waiter("warehouse", (warehouse,), "2", "next#run#0#t", "token-next", ended)
    engine.store.set_pool("lake", 1)
    engine.store.take_claims((lake,), "held#run#0#t", ended, "tag")
    engine.store.create_run_pool(own.pool, 2, ended)
    engine.store.add_waiter(own.pool, (own, lake), "3", "pooled#r#0#t", "token-t", ended)
    engine.store.create_run_pool("max_active_tasks:pooled:0:old", 2, gone)
    with freeze_reconciler_clock(minutes=11):
        repaired = engine.session.invoke_locally(NAMES.reconcile_runs, {})["pools"]
    # one freed; the waiters' executions have ended: the one too big for the pool is failed, the other's
    # token is dead, so the slot taken for it goes back
    assert repaired == {"warehouse": 1}
    assert engine.store.get_pool("warehouse").used == 0
    assert engine.store.waiters("warehouse") == []
    assert [w.holder for w in engine.store.waiters("lake")] == ["pooled#r#0#t"]
    assert [p.name for p in engine.store.list_pools(runs=True)] == [own.pool]

    # asset-triggered runs: the producer's task records its event and queues it for the consumer
    # (registered by its deploy), then start-run consumes the queue and starts the consumer's run; the
    # end of an asset-triggered run (heard by track-runs, or settled by reconcile-runs) has start-run
    # look at its DAG's queue again; a consumer whose file goes stops hearing of the asset
    assert put(engine, "dags/consumer.py", CONSUMER)["files"][0]["outcome"] == "deployed"
    assert put(engine, "dags/producer.py", PRODUCER)["files"][0]["outcome"] == "deployed"
    target = boto3.client("scheduler").get_schedule(Name="airstep-dev-producer", GroupName="airstep-dev")["Target"]
    consumed = []
    for day in (21, 22):
        produced = engine.session.invoke_locally(
            NAMES.start_run, {**json.loads(target["Input"]), "scheduled_time": f"2026-11-{day}T02:00:00Z"}
        )
        assert wait(produced["execution_arn"])["status"] == "SUCCEEDED"
        newest = max(engine.store.runs_of_dag("consumer"), key=lambda r: r.run_id)
        assert newest.triggered_by == "asset" and newest.run_id.startswith("asset_triggered__")
        assert [e["asset"] for e in newest.to_dict()["triggering_asset_events"]] == ["orders"]
        consumed.append(newest)
        description = wait(newest.execution_arn)
        assert description["status"] == "SUCCEEDED"
        if day == 21:
            engine.session.invoke_locally(NAMES.track_runs, status_event(execution_detail(description)))
    with freeze_reconciler_clock(minutes=11):
        settled = engine.session.invoke_locally(NAMES.reconcile_runs, {})["settled"]
    assert consumed[1].run_id in [s["run_id"] for s in settled]
    assert len({run.run_id for run in consumed}) == 2
    engine.s3.delete_object(Bucket=NAMES.bucket, Key="dags/consumer.py")
    engine.session.invoke_locally(NAMES.compile_dags, s3_event("dags/consumer.py"))
    assert engine.store.consumers("orders") == []

    # an s3:// asset: an object created under it (S3 -> EventBridge -> asset-events) updates it, and
    # start-run starts its consumer's run; the same event delivered again records nothing
    assert put(engine, "dags/lake.py", LAKE)["files"][0]["outcome"] == "deployed"
    event = object_created("lake", "orders/2026-11-21/part+0.csv", "0061")
    recorded = engine.session.invoke_locally(NAMES.asset_events, event)
    assert recorded["assets"] == ["s3://lake/orders"] and recorded["consumers"] == ["lake"]
    (run,) = engine.store.runs_of_dag("lake")
    ended = wait(run.execution_arn)
    assert ended["status"] == "SUCCEEDED"
    engine.session.invoke_locally(NAMES.track_runs, status_event(execution_detail(ended)))
    loaded = engine.store.get_xcoms(RunKey("lake", run.run_id), ["load"])
    assert loaded == {"load": ["orders/2026-11-21/part 0.csv"]}
    engine.session.invoke_locally(NAMES.asset_events, event)
    assert engine.store.queued_assets("lake") == {} and len(engine.store.runs_of_dag("lake")) == 1
    assert (
        engine.session.invoke_locally(NAMES.asset_events, object_created("lake", "ordersx/1.csv", "0062"))["assets"]
        == []
    )
    # an event whose start-run failed every attempt (here: never asked): the reconciler asks again
    # once it has waited its grace period
    late = AssetEvent("s3://lake/orders", "s3://lake/orders", "2026-11-21T07:00:00+00:00", {"key": "orders/late.csv"})
    assets.record(engine.store, late)
    assert engine.session.invoke_locally(NAMES.reconcile_runs, {})["asset_runs"] == []  # not overdue yet
    with freeze_reconciler_clock(minutes=11):
        assert engine.session.invoke_locally(NAMES.reconcile_runs, {})["asset_runs"] == ["lake"]
    assert engine.store.queued_assets("lake") == {} and len(engine.store.runs_of_dag("lake")) == 2
    engine.s3.delete_object(Bucket=NAMES.bucket, Key="dags/lake.py")
    engine.session.invoke_locally(NAMES.compile_dags, s3_event("dags/lake.py"))
    assert engine.store.watched(bucket_source("lake")) == []

    # an AssetWatcher over an SQS queue: its deploy has the queue deliver to asset-events (an event
    # source mapping: Lambda polls it with the function's role), once however often it is deployed;
    # each message updates the asset and start-run starts the consumer's run; a message delivered
    # again records nothing; a queue the stack does not list is refused; the DAG's removal stops it
    assert put(engine, "dags/inbox.py", INBOX)["files"][0]["outcome"] == "deployed"
    assert put(engine, "dags/inbox.py", INBOX + "# again\n")["files"][0]["outcome"] == "deployed"
    functions = boto3.client("lambda")
    (mapping,) = functions.list_event_source_mappings(EventSourceArn=INBOX_ARN)["EventSourceMappings"]
    assert mapping["FunctionArn"] == NAMES.function_arn(NAMES.asset_events)
    batch = {"Records": [queue_message(INBOX_ARN, '{"order": 7}')]}
    assert engine.session.invoke_locally(NAMES.asset_events, batch) == {"batchItemFailures": []}
    (run,) = engine.store.runs_of_dag("inbox")
    ended = wait(run.execution_arn)
    assert ended["status"] == "SUCCEEDED"
    engine.session.invoke_locally(NAMES.track_runs, status_event(execution_detail(ended)))
    assert engine.store.get_xcoms(RunKey("inbox", run.run_id), ["read"]) == {"read": ['{"order": 7}']}
    assert engine.session.invoke_locally(NAMES.asset_events, batch) == {"batchItemFailures": []}
    assert engine.store.queued_assets("inbox") == {} and len(engine.store.runs_of_dag("inbox")) == 1
    elsewhere = INBOX.replace("airstep-dev-inbox", "elsewhere").replace('DAG("inbox"', 'DAG("elsewhere"')
    (refused,) = put(engine, "dags/elsewhere.py", elsewhere)["files"][0]["errors"]
    assert f"arn:aws:sqs:{REGION}:{ACCOUNT}:elsewhere, which this environment may not read" in refused
    for gone in ("dags/inbox.py", "dags/elsewhere.py"):
        engine.s3.delete_object(Bucket=NAMES.bucket, Key=gone)
        engine.session.invoke_locally(NAMES.compile_dags, s3_event(gone))
    assert functions.list_event_source_mappings(EventSourceArn=INBOX_ARN)["EventSourceMappings"] == []

    # a TriggerDagRunOperator: its try asks, run-task has start-run start the run (its conf checked
    # against the target's params), then waits for it poke by poke, reading its record
    assert put(engine, "dags/target.py", TARGET)["files"][0]["outcome"] == "deployed"
    assert put(engine, "dags/controller.py", CONTROLLER)["files"][0]["outcome"] == "deployed"
    target = boto3.client("scheduler").get_schedule(Name="airstep-dev-controller", GroupName="airstep-dev")["Target"]
    controlling = engine.session.invoke_locally(
        NAMES.start_run, {**json.loads(target["Input"]), "scheduled_time": "2026-11-21T02:00:00Z"}
    )
    assert wait(controlling["execution_arn"])["status"] == "SUCCEEDED"
    kicked = engine.store.get_xcoms(RunKey("controller", controlling["run_id"]), ["kick"], key="trigger_run_id")
    (triggered,) = engine.store.runs_of_dag("target")
    assert kicked == {"kick": triggered.run_id} and triggered.state.value == "success"
    assert triggered.triggered_by == "operator"
    assert engine.store.get_xcoms(RunKey("target", triggered.run_id), ["double"]) == {"double": 42}

    # a DAG whose tasks' queue has no executor function in this environment
    queued = N_SHAPE.replace('"n_shape"', '"queued"').replace("op_args=[t])", "op_args=[t], queue='warehouse')")
    queued = queued.replace('{"c": "AwsEcsExecutor"}', "{}")
    outcome = put(engine, "dags/queued.py", queued)["files"]
    assert "has no executor function airstep-dev-execute-task-warehouse" in outcome[0]["errors"][0]

    # a DAG with AWS operators: its deploy gives it a role of its own (its calls' policy, under the
    # environment's boundary); Step Functions makes its calls with that role (judged below); a DAG asking
    # for more than the boundary is refused, naming the task; the DAG's removal deletes its role
    boto3.client("s3").create_bucket(Bucket="lake")
    boto3.client("sns").create_topic(Name="finished")
    assert put(engine, "dags/calls.py", CALLS)["files"][0]["outcome"] == "deployed"
    iam = boto3.client("iam")
    role = iam.get_role(RoleName=f"airstep-dev-{REGION}-dag-calls")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY_ARN
    machine = engine.sfn.describe_state_machine(stateMachineArn=engine.store.get_dag("calls").state_machine_arn)
    assert machine["roleArn"] == role["Arn"]
    target = boto3.client("scheduler").get_schedule(Name="airstep-dev-calls", GroupName="airstep-dev")["Target"]
    called = engine.session.invoke_locally(
        NAMES.start_run, {**json.loads(target["Input"]), "scheduled_time": "2026-11-21T02:00:00Z"}
    )
    ended = wait(called["execution_arn"])
    instances = engine.store.task_instances(RunKey("calls", called["run_id"]))
    assert ended["status"] == "SUCCEEDED", [(ti.task_id, ti.state, ti.error) for ti in instances]
    greedy = CALLS.replace('"calls"', '"greedy"').replace("finished", "elsewhere")
    (refused,) = put(engine, "dags/greedy.py", greedy)["files"][0]["errors"]
    assert "task 'tell' calls sns:Publish on arn:aws:sns:us-east-1:123456789012:elsewhere" in refused
    for gone in ("dags/calls.py", "dags/greedy.py"):
        engine.s3.delete_object(Bucket=NAMES.bucket, Key=gone)
        engine.session.invoke_locally(NAMES.compile_dags, s3_event(gone, removed=True))
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if "-dag-" in r["RoleName"]] == []

    # a broken upload, a repair, then the file's removal (schedule deleted, DAG retired)
    assert put(engine, "dags/n_shape.py", "from airstep import DAG\noops(\n")["files"][0]["outcome"] == "import_error"
    assert put(engine, "dags/n_shape.py", N_SHAPE)["files"][0]["outcome"] == "deployed"
    engine.s3.delete_object(Bucket=NAMES.bucket, Key="dags/n_shape.py")
    removed = engine.session.invoke_locally(NAMES.compile_dags, s3_event("dags/n_shape.py", removed=True))
    assert {o["file"].rsplit("/", 1)[1]: o["outcome"] for o in removed["files"]}["n_shape.py"] == "removed"
    # each upload and the deletion left its audit record, naming who made it, in the audit log group
    trail = [r for r in CloudWatchAuditLog(boto3.client("logs"), AUDIT_GROUP).read("n_shape") if r.via is Via.S3]
    assert [(r.action.value, r.outcome, r.principal) for r in trail[-3:]] == [
        ("upload", "import_error", UPLOADER),
        ("upload", "deployed", UPLOADER),
        ("delete", "removed", UPLOADER),
    ]

    statements = policies("dev", AssetQueues=[INBOX_ARN], DagBoundaryResources=DAG_RESOURCES)
    # what Lambda polls a watched queue with: that queue, and no other
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert allowing(statements["AssetEventsFunction"], Request(action, INBOX_ARN))
        assert not allowing(statements["AssetEventsFunction"], Request(action, INBOX_ARN + "-other"))
    denied, used, dag_role_calls = [], set(), set()
    calls = [(principal_of(call, NAMES), call) for call in engine.session.calls]
    boundary = statements[f"{MANAGED}DagPermissionsBoundary"]
    for principal, call in calls:
        if principal is None:  # the test itself, setting up and reading back
            continue
        for request in iam_requests(call, NAMES):
            if principal.startswith(DAG_ROLE):  # its own policy and the shared one, within its boundary
                own = ROLES[principal.removeprefix(DAG_ROLE)]
                assert own["attached"] == [SHARED_POLICY_ARN] and own["boundary"] == BOUNDARY_ARN
                granted_here = own["policy"]["Statement"] + statements[f"{MANAGED}StateMachinePolicy"]
                if not (allowing(granted_here, request) and allowing(boundary, request)):
                    denied.append(f"{principal}: {request.action} on {request.resource}")
                dag_role_calls.add(request.action)
                continue
            allowed = allowing(statements.get(principal, []), request)
            if not allowed:
                denied.append(f"{principal}: {request.action} on {request.resource} {dict(request.context)}")
            used |= {(principal, statement.get("Sid"), request.action.lower()) for statement in allowed}
    assert denied == [], "\n".join(denied)
    # the DAG's role made its operators' calls and invoked the task runner, nothing else
    assert dag_role_calls == {
        "s3:PutObject",
        "s3:ListBucket",
        "sns:Publish",
        "lambda:InvokeFunction",
        "ecs:RunTask",  # its container try (under the shared policy, within the boundary)
        "iam:PassRole",
    }

    granted = {
        (principal, statement.get("Sid"), action.lower())
        for principal, role_statements in statements.items()
        if not principal.startswith(MANAGED)  # (a policy itself: its roles' keys judge its use)
        for statement in role_statements
        if statement["Effect"] == "Allow" and statement.get("Sid") != "AWSLambdaBasicExecutionRole"  # Lambda's own
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    }
    unused = {g for g in granted - used if (g[0], g[2]) not in {(p, a.lower()) for p, a in USED_BY_AWS_ONLY}}
    assert unused == set(), sorted(unused)
    principals = {principal for principal, _ in calls}
    assert principals >= {
        "ContainerTaskRole",
        "ReconcileRunsFunction",
        "RunTaskFunction",
        "ExecuteTaskFunction",
        "CompileDagsFunction",
        "StartRunFunction",
        "TrackRunsFunction",
        STATE_MACHINES,
    }
    assert "ParseDagsFunction" not in principals  # it parsed every file, and called no AWS API at all
    parse_grants = [s for s in statements["ParseDagsFunction"] if s["Effect"] == "Allow"]
    assert [s["Sid"] for s in parse_grants] == ["AWSLambdaBasicExecutionRole"]  # (Lambda writes its logs)


FORGER = """
from datetime import datetime
import boto3
from airflow.sdk import DAG, task

GROUP = "/airstep/dev/audit"

with DAG("forger", schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def rewrite_history():
        logs = boto3.client("logs")
        attempts = [
            lambda: logs.create_log_stream(logGroupName=GROUP, logStreamName="cli/2026/12/05"),
            lambda: logs.put_log_events(
                logGroupName=GROUP,
                logStreamName="cli/2026/12/05",
                logEvents=[{"timestamp": 1796400000000, "message": '{"action": "trigger", "principal": "someone"}'}],
            ),
            lambda: logs.put_retention_policy(logGroupName=GROUP, retentionInDays=1),
            lambda: logs.delete_log_stream(logGroupName=GROUP, logStreamName="cli/2026/12/05"),
            lambda: logs.delete_log_group(logGroupName=GROUP),
        ]
        for attempt in attempts:
            attempt()  # (moto does not enforce IAM: the test holds each call against the task role)

    rewrite_history()
"""


def test_task_code_that_tries_to_rewrite_the_audit_trail_is_denied_every_call(stack, tmp_path):
    engine = stack
    path = tmp_path / "forger.py"
    path.write_text(FORGER)
    result = engine.run(*load_model(path), RunRequest())
    assert result.state == "success", [(t.task_id, t.error) for t in result.tasks]
    statements = policies("dev")["ExecuteTaskFunction"]
    tried = [
        request
        for call in engine.session.calls
        if call.service == "logs" and principal_of(call, NAMES) == "ExecuteTaskFunction"
        for request in iam_requests(call, NAMES)
    ]
    assert [r.action for r in tried] == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:PutRetentionPolicy",
        "logs:DeleteLogStream",
        "logs:DeleteLogGroup",
    ]
    assert [r.action for r in tried if allowing(statements, r)] == []  # in AWS each of them is AccessDenied


def test_no_function_can_alter_or_forge_an_audit_record():
    """The audit log group is append-only for every function, whatever AWSLambdaBasicExecutionRole
    allows them (logs:PutLogEvents anywhere): none may delete, expire, re-key or redirect it, and only
    the compile function may write to it (its own streams), never task code or DAG files' code."""
    statements = policies("dev")
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{AUDIT_GROUP}"
    functions = [p for p in statements if p.endswith("Function")]
    assert len(functions) == 8
    altering = [
        Request("logs:DeleteLogGroup", group),
        Request("logs:DeleteLogStream", f"{group}:log-stream:compile-dags/2026/12/05"),
        Request("logs:PutRetentionPolicy", group),
        Request("logs:DeleteRetentionPolicy", group),
        Request("logs:DisassociateKmsKey", group),
        Request("logs:PutDataProtectionPolicy", group),
        Request("logs:PutSubscriptionFilter", group),
        Request("logs:PutTransformer", group),  # (it would rewrite events as they are stored)
        Request("logs:PutAccountPolicy", "*"),  # (an account-wide data protection policy would mask them)
    ]
    for principal in [*functions, STATE_MACHINES, "SchedulerRole"]:
        for request in altering:
            assert not allowing(statements[principal], request), (principal, request.action)
    cli_stream = f"{group}:log-stream:cli/2026/12/05"
    own_stream = f"{group}:log-stream:compile-dags/2026/12/05"
    for principal in functions:
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            forged = allowing(statements[principal], Request(action, cli_stream))
            assert not forged or principal == "CompileDagsFunction", (principal, action)
            own = allowing(statements[principal], Request(action, own_stream))
            assert bool(own) == (principal == "CompileDagsFunction"), (principal, action)
    # ... while writing any other log group (the function's own) stays allowed
    elsewhere = Request("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/x:log-stream:y")
    assert all(allowing(statements[principal], elsewhere) for principal in functions)


# What Step Functions or Athena does with a DAG's role beyond the calls its states make: `.sync`
# watching (Glue's job runs; stopping a run, a query or a task at the state's timeout), and Athena
# reading the catalog and the data and writing the results as the caller. The rest of the DAG's
# policy must be the calls its states made.
DONE_FOR_THE_DAG_BY_AWS = {
    "glue:GetJobRun",
    "glue:GetJobRuns",
    "glue:BatchStopJobRun",
    "athena:GetQueryExecution",
    "athena:StopQueryExecution",
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
    "s3:GetObject",
    "s3:GetBucketLocation",
    "s3:AbortMultipartUpload",
}


def test_a_dag_mixing_glue_athena_lambda_a_container_and_an_s3_wait_runs_under_its_own_role(monkeypatch):
    """examples/dags/lake_pipeline.py, deployed by the compile function: no Lambda polls (its sensor
    is S3 list calls between Wait states, its Glue job and query `.sync` calls, its long task an ECS
    task), its run succeeds, and each call its role makes is allowed by its own policy within the
    boundary, that policy granting nothing its calls (and AWS's on its behalf) do not use."""
    handler = runpy.run_path(str(ROOT / "examples" / "functions" / "score.py"))["handler"]
    source = (ROOT / "examples" / "dags" / "lake_pipeline.py").read_text()
    source = source.replace('params={"rebuild_minutes": 20}', 'params={"rebuild_minutes": 0.02}')
    boundary = {
        "AIRSTEP_DAG_BOUNDARY_ACTIONS": "s3:*,glue:*,athena:*,lambda:InvokeFunction",
        "AIRSTEP_DAG_BOUNDARY_RESOURCES": "*",
    }
    with _stack(monkeypatch, functions={"score": handler}, **boundary) as engine:
        boto3.client("s3").create_bucket(Bucket="example-lake")
        boto3.client("glue").create_job(Name="lake-clean-orders", Role="glue", Command={"Name": "glueetl"})
        engine.session.calls = []
        assert put(engine, "dags/lake_pipeline.py", source)["files"][0]["outcome"] == "deployed"
        record = engine.store.get_dag("lake_pipeline")
        definition = json.loads(
            engine.sfn.describe_state_machine(stateMachineArn=record.state_machine_arn)["definition"]
        )
        lambdas = []

        def walk(states):
            for name, state in states.items():
                if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                    lambdas.append((name, state["Parameters"].get("FunctionName")))
                for branch in state.get("Branches", []):
                    walk(branch["States"])

        walk(definition["States"])
        # the runner's short steps only (each task's begin and record, the run's finalize), and score's call
        assert [n for n, f in lambdas if f != NAMES.run_task] == ["score@call"]
        runner = [n for n, f in lambdas if f == NAMES.run_task]
        assert all(n.endswith(("@begin", "@record")) or n.startswith("dagrun") for n in runner), runner
        (ecs,) = [s for s in _states(definition) if s.get("Resource") == "arn:aws:states:::ecs:runTask.sync"]
        assert ecs["TimeoutSeconds"] == 45 * 60 + 600 and ecs["Parameters"]["TaskDefinition"] == "airstep-dev-runner"

        target = boto3.client("scheduler").get_schedule(Name="airstep-dev-lake_pipeline", GroupName="airstep-dev")
        started = engine.session.invoke_locally(
            NAMES.start_run, {**json.loads(target["Target"]["Input"]), "scheduled_time": "2026-11-21T00:00:00Z"}
        )
        arn = started["execution_arn"]
        while engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            time.sleep(0.05)
        instances = engine.store.task_instances(RunKey("lake_pipeline", started["run_id"]))
        assert {ti.task_id: ti.state.value for ti in instances} == dict.fromkeys(
            ["land", "exported", "clean", "count", "rebuild_index", "score"], "success"
        ), [(ti.task_id, ti.error) for ti in instances]

        role = f"airstep-dev-{REGION}-dag-lake_pipeline"
        judged = [(principal_of(call, NAMES), iam_requests(call, NAMES)) for call in engine.session.calls]
        own = ROLES[role]  # (as its deploy created it: the calls above)
        actions = boundary["AIRSTEP_DAG_BOUNDARY_ACTIONS"].split(",")
        statements = policies("dev", DagBoundaryResources=["*"], DagBoundaryActions=actions)
        granted = own["policy"]["Statement"] + statements[f"{MANAGED}StateMachinePolicy"]
        ceiling = statements[f"{MANAGED}DagPermissionsBoundary"]
        denied, made = [], set()
        for principal, requests in judged:
            for request in requests:
                if principal == f"{DAG_ROLE}{role}":
                    made.add(request.action)
                    if not (allowing(granted, request) and allowing(ceiling, request)):
                        denied.append(f"{request.action} on {request.resource}")
                elif principal == "ContainerTaskRole" and not allowing(statements["ContainerTaskRole"], request):
                    denied.append(f"container: {request.action} on {request.resource}")
        assert denied == []
        assert made == {
            "s3:PutObject",  # land
            "s3:ListBucket",  # exported's pokes
            "glue:StartJobRun",  # clean, and Step Functions watching its run (.sync)
            "glue:GetJobRun",
            "athena:StartQueryExecution",  # count
            "ecs:RunTask",  # rebuild_index's container, and its two roles handed to ECS
            "iam:PassRole",
            "lambda:InvokeFunction",  # score, and the runner's steps
        }
        own_actions = {a for s in own["policy"]["Statement"] for a in s["Action"]}
        assert own_actions - made <= DONE_FOR_THE_DAG_BY_AWS, own_actions - made - DONE_FOR_THE_DAG_BY_AWS


def _states(definition):
    for state in definition["States"].values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)
