"""TriggerDagRunOperator: what its code asks for (Airflow 3.3's run ids, conf and logical-date rules),
and what start-run decides for the request (tests/conformance/airflow_files holds Airflow's own
answers for the same shapes; these pin what dag.test() cannot show: a paused DAG, the run record)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from airstep.model import DagModel
from airstep.runtime.store import RunKey
from airstep.runtime.triggering import TriggerRequest, trigger
from airstep.sdk.dag import DAG
from airstep.sdk.operators.trigger_dagrun import DagRunTriggerException, TriggerDagRunOperator
from airstep.sdk.param import Param
from airstep.states import RunState, TaskState
from airstep_compiler import DagSource
from airstep_compiler.deploy import dag_record


def asked(**kwargs) -> DagRunTriggerException:
    with DAG("controller", schedule=None, start_date=datetime(2026, 1, 1)):
        operator = TriggerDagRunOperator(task_id="t", trigger_dag_id="target", **kwargs)
    with pytest.raises(DagRunTriggerException) as raised:
        operator.execute({})
    return raised.value


def test_the_run_id_is_airflows_for_a_manual_run():
    assert asked(logical_date="2026-03-01T00:00:00+00:00").dag_run_id == "manual__2026-03-01T00:00:00+00:00"
    now = asked()  # no logical date given: now, and the run id names it
    assert now.logical_date is not None and now.dag_run_id == f"manual__{now.logical_date.isoformat()}"
    without = asked(logical_date=None)  # none at all: run_after now, and a random suffix
    assert without.logical_date is None and re.fullmatch(r"manual__.+_[A-Za-z0-9]{8}", without.dag_run_id)
    assert asked(trigger_run_id="mine").dag_run_id == "mine"


def test_conf_is_a_json_object_as_airflow_requires():
    assert asked(conf='{"a": 1}').conf == {"a": 1}  # a rendered template is parsed
    with pytest.raises(ValueError, match="conf parameter should be JSON Serializable"):
        asked(conf={"when": datetime.now(UTC)})


def test_a_templated_wait_compiles_as_a_wait():
    with DAG("controller", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        TriggerDagRunOperator(task_id="flag", trigger_dag_id="target", wait_for_completion="{{ params.wait }}")
        TriggerDagRunOperator(task_id="off", trigger_dag_id="target")
    tasks = DagModel.from_dag(dag).task_map
    assert tasks["flag"].sensor is not None and tasks["flag"].sensor.mode == "poke"
    assert tasks["off"].sensor is None and tasks["off"].trigger is not None


@pytest.fixture
def target(aws):
    """A deployed DAG `target` (params: x, an integer) on the fixture's state machine."""
    store, sfn, arn = aws
    with DAG("target", schedule=None, start_date=datetime(2026, 1, 1), params={"x": Param(1, type="integer")}) as dag:
        TriggerDagRunOperator(task_id="noop", trigger_dag_id="elsewhere")
    store.put_dag(dag_record(DagModel.from_dag(dag), DagSource("s3://b/dags/t.py", "v1"), arn, None))
    return store, sfn


BY = {"dag_id": "controller", "run_id": "r", "task_id": "t", "map_index": -1, "try_number": 1}


def request(**changes) -> TriggerRequest:
    return dataclasses.replace(TriggerRequest("target", "manual__x", {"x": 2}, "2026-03-01T00:00:00+00:00"), **changes)


def test_a_run_is_started_and_says_which_task_asked(target):
    store, sfn = target
    done = trigger(store, sfn, request(), BY)
    assert (done.state, done.run_id) == (TaskState.SUCCESS, "manual__x")
    record = store.get_run(RunKey("target", "manual__x"))
    assert record.state in (RunState.QUEUED, RunState.RUNNING) and record.triggered_by == "operator"
    assert record.run_type == "operator_triggered"  # Airflow 3.3's run type (its run id says manual__)
    assert record.to_dict()["triggering_task"] == BY
    assert record.logical_date.startswith("2026-03-01") and record.dag_run().conf == {"x": 2}


def test_a_run_that_exists_fails_the_task_without_retries_or_skips_it(target):
    store, sfn = target
    trigger(store, sfn, request(), BY)
    again = trigger(store, sfn, request(), {**BY, "task_id": "other"})
    assert (again.state, again.final, again.kind) == (TaskState.FAILED, True, "DagRunAlreadyExists")
    skipped = trigger(store, sfn, request(skip_when_already_exists=True), {**BY, "try_number": 2})
    assert (skipped.state, skipped.error) == (TaskState.SKIPPED, None)


def test_the_same_try_asking_again_gets_the_same_answer(target):
    """A retried runner asks again for the try's request (kept on its record): start-run knows the
    run this very try started, and no second run starts."""
    store, sfn = target
    first = trigger(store, sfn, request(), BY)
    again = trigger(store, sfn, request(), BY)
    assert first == again and again.run_id == "manual__x"
    assert [r.run_id for r in store.runs_of_dag("target")] == ["manual__x"]


def test_what_cannot_be_triggered_fails_the_try_and_its_retries_apply(target):
    store, sfn = target
    missing = trigger(store, sfn, request(dag_id="nope"), BY)
    assert (missing.state, missing.final, missing.kind) == (TaskState.FAILED, False, "DagNotFound")
    refused = trigger(store, sfn, request(conf={"x": "secret-value"}), BY)
    assert refused.kind == "ParamValidationError" and "param 'x' fails its schema ('type')" in refused.error
    assert "secret-value" not in refused.error  # a conf may carry a secret: never quoted
    odd = trigger(store, sfn, request(run_id="has space"), BY)
    assert odd.kind == "ValueError" and "does not match regex pattern" in odd.error
    assert store.get_run(RunKey("target", "manual__x")) is None  # nothing started


def test_a_paused_dag_is_not_triggered(target):
    store, sfn = target
    store.put_dag(dataclasses.replace(store.get_dag("target"), paused=True))
    paused = trigger(store, sfn, request(), BY)
    assert paused.state is TaskState.FAILED and "airstep starts no run of a paused DAG" in paused.error
    asked_to_fail = trigger(store, sfn, request(fail_when_dag_is_paused=True), BY)
    assert (asked_to_fail.kind, asked_to_fail.error) == ("DagIsPaused", "Dag target is paused")


def test_a_wait_is_bounded_by_execution_timeout_and_compiles_past_lambdas_limit():
    from datetime import timedelta

    from airstep_compiler import CompileOptions, compile_dag

    with DAG("controller", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        TriggerDagRunOperator(
            task_id="t", trigger_dag_id="x", wait_for_completion=True, execution_timeout=timedelta(hours=2)
        )
    (task,) = DagModel.from_dag(dag).tasks
    assert (task.sensor.timeout, task.execution_timeout) == (7200, None)  # the wait's limit, not one Lambda's
    compile_dag(DagModel.from_dag(dag), DagSource("s3://b/dags/c.py", "v1"), CompileOptions(function_name="f"))


def test_a_poke_past_the_limit_fails_as_airflows_execution_timeout_does(target):
    from airstep.runtime.triggering import poke

    store, sfn = target
    trigger(store, sfn, request(), BY)
    with DAG("controller", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        TriggerDagRunOperator(task_id="t", trigger_dag_id="target", wait_for_completion=True, poke_interval=5)
    (task,) = DagModel.from_dag(dag).tasks
    still = poke(store, task, "target manual__x", elapsed=10)  # (nothing tracks the run's end here)
    assert still.state is TaskState.UP_FOR_RESCHEDULE and still.watching == "target manual__x"
    late = poke(store, task, "target manual__x", elapsed=task.sensor.timeout + 1)
    assert (late.state, late.error_type, late.final) == (TaskState.FAILED, "AirflowTaskTimeout", False)
    gone = poke(store, task, "target manual__gone", elapsed=1)
    assert gone.state is TaskState.FAILED and "has no record" in gone.error


def test_the_same_try_gets_its_answer_whatever_became_of_the_dag_since(target):
    store, sfn = target
    first = trigger(store, sfn, request(), BY)
    store.put_dag(dataclasses.replace(store.get_dag("target"), paused=True))  # paused before the runner's retry
    assert trigger(store, sfn, request(), BY) == first
    assert trigger(store, sfn, request(), {**BY, "try_number": 2}).kind == "DagIsPaused"  # a new try is new


def test_a_run_that_could_not_start_fails_the_try_however_often_asked(target):
    store, sfn = target
    gone = "arn:aws:states:us-east-1:123456789012:stateMachine:airstep-dev-gone"
    store.put_dag(dataclasses.replace(store.get_dag("target"), state_machine_arn=gone))
    first = trigger(store, sfn, request(), BY)
    assert first.state is TaskState.FAILED and "could not start" in first.error
    assert trigger(store, sfn, request(), BY) == first


def test_latest_only_lets_a_run_without_a_logical_date_through():
    from airstep.contract import DagRun
    from airstep.sdk.operators import EmptyOperator
    from airstep.sdk.operators.latest_only import LatestOnlyOperator
    from airstep.states import RunType

    with DAG("target", schedule="@daily", start_date=datetime(2026, 1, 1)):
        latest = LatestOnlyOperator(task_id="latest")
        latest >> EmptyOperator(task_id="after")
    run = DagRun("target", "manual__x_abc", RunType.OPERATOR_TRIGGERED, None, None, None)
    assert latest.choose_branch({"dag_run": run}) == ["after"]  # Airflow reads its run_after: now
