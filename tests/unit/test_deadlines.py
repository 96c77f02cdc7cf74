"""Deadline alerts: Airflow 3.3's API and how each reference computes a run's deadline.

Airflow 3.3.2's dag.test() cannot show deadlines (with DAGRUN_QUEUED_AT it skips the alert, and at
the end of a run it fails in DeadlineAlert.get_by_id), so each test names the Airflow source whose
behaviour it pins: airflow/sdk/definitions/deadline.py and callback.py (the API), and
airflow/serialization/definitions/deadline.py (SerializedReferenceModels: how each reference is
evaluated when the run is created or queued).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from airstep.contract import DagRun
from airstep.errors import DagDefinitionError, SourceLocation
from airstep.model import DagModel
from airstep.runtime.deadline_alerts import deadline_moment, schedule_name
from airstep.sdk.deadline import (
    AsyncCallback,
    AverageRuntimeDeadline,
    DeadlineAlert,
    DeadlineReference,
    SyncCallback,
    deadline_alerts,
)
from airstep.states import RunType

NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
QUEUED = NOW - timedelta(minutes=5)
RUN = DagRun("finance", "scheduled__2026-12-04", RunType.SCHEDULED, datetime(2026, 12, 4, tzinfo=UTC), None, None)
HERE = SourceLocation("dag.py", 3)


def notify(context=None, **kwargs):
    return context


async def notify_later(context=None, **kwargs):
    await asyncio.sleep(0)


def policy(reference, interval=timedelta(hours=1), **callback_kwargs):
    from airstep.sdk.dag import DAG

    with DAG("finance", deadline=DeadlineAlert(reference, interval, SyncCallback(notify, callback_kwargs))) as dag:
        pass
    (found,) = DagModel.from_dag(dag).deadlines
    return found


def test_queued_at_counts_from_when_the_run_was_queued():
    """DagRunQueuedAtDeadline: DagRun.queued_at + interval."""
    assert deadline_moment(policy(DeadlineReference.DAGRUN_QUEUED_AT), RUN, QUEUED, NOW, []) == QUEUED + timedelta(
        hours=1
    )


def test_logical_date_counts_from_the_logical_date_and_a_run_without_one_has_no_deadline():
    """DagRunLogicalDateDeadline: DagRun.logical_date + interval; a base of None gives no deadline."""
    alert = policy(DeadlineReference.DAGRUN_LOGICAL_DATE, timedelta(hours=6))
    assert deadline_moment(alert, RUN, QUEUED, NOW, []) == datetime(2026, 12, 4, 6, tzinfo=UTC)
    manual = DagRun("finance", "manual__x", RunType.MANUAL, None, None, None)
    assert deadline_moment(alert, manual, QUEUED, NOW, []) is None


def test_a_fixed_datetime_is_that_moment_plus_the_interval():
    """FixedDatetimeDeadline: the datetime (stored as a timestamp) + interval."""
    fixed = datetime(2026, 12, 5, 5, 30, tzinfo=UTC)
    alert = policy(DeadlineReference.FIXED_DATETIME(fixed), timedelta(minutes=30))
    assert deadline_moment(alert, RUN, QUEUED, NOW, []) == datetime(2026, 12, 5, 6, tzinfo=UTC)


def test_average_runtime_averages_the_latest_successful_runs_from_when_the_run_is_created():
    """AverageRuntimeDeadline: utcnow() + the mean duration of the latest `max_runs` successful runs,
    + interval; fewer than `min_runs` of them: no deadline."""
    alert = policy(DeadlineReference.AVERAGE_RUNTIME(max_runs=3, min_runs=2), timedelta(minutes=10))
    assert deadline_moment(alert, RUN, QUEUED, NOW, [60.0, 120.0, 180.0, 9999.0]) == NOW + timedelta(minutes=12)
    assert deadline_moment(alert, RUN, QUEUED, NOW, [60.0, 120.0]) == NOW + timedelta(minutes=11, seconds=30)
    assert deadline_moment(alert, RUN, QUEUED, NOW, [60.0]) is None


def test_average_runtimes_defaults_are_airflows():
    """DeadlineReference.AVERAGE_RUNTIME(): max_runs 0 means DEFAULT_LIMIT (10); min_runs defaults to
    max_runs, and must be at least 1."""
    default = DeadlineReference.AVERAGE_RUNTIME()
    assert (default.max_runs, default.min_runs) == (10, 10)
    assert DeadlineReference.AVERAGE_RUNTIME(max_runs=5).to_dict() == {
        "kind": "average_runtime",
        "max_runs": 5,
        "min_runs": 5,
    }
    with pytest.raises(ValueError, match="min_runs must be at least 1"):
        AverageRuntimeDeadline(3, 0)


def test_callbacks_are_checked_as_airflow_checks_them():
    """callback.py: `context` is a reserved kwarg; an AsyncCallback must be awaitable; a callable's
    path is module.qualname; DeadlineAlert takes only AsyncCallback and SyncCallback."""
    with pytest.raises(ValueError, match="context is a reserved kwarg"):
        SyncCallback(notify, kwargs={"context": 1})
    with pytest.raises(AttributeError, match="is not awaitable"):
        AsyncCallback(notify)
    assert AsyncCallback(notify_later).path == f"{__name__}.notify_later"
    assert SyncCallback("my_company.alerts.page", executor="CeleryExecutor").path == "my_company.alerts.page"
    with pytest.raises(ValueError, match="Callbacks of type"):
        DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, timedelta(1), notify)  # type: ignore[arg-type]


def test_a_dag_takes_one_alert_or_a_list_and_refuses_what_airstep_cannot_arm_at_its_line():
    alert = DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, timedelta(hours=1), SyncCallback(notify), name="six")
    assert deadline_alerts(alert, HERE) == (alert,)
    assert deadline_alerts([alert, alert], HERE) == (alert, alert)
    with pytest.raises(DagDefinitionError, match="deadline must be a DeadlineAlert"):
        deadline_alerts("06:00", HERE)
    variable = DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, object(), SyncCallback(notify))  # type: ignore[arg-type]
    with pytest.raises(DagDefinitionError, match="deadline interval must be a timedelta"):
        deadline_alerts(variable, HERE)


def test_the_model_keeps_each_alert_and_round_trips():
    alert = policy(DeadlineReference.AVERAGE_RUNTIME(max_runs=4, min_runs=2), timedelta(minutes=5), team="finance")
    assert (alert.reference, alert.interval, alert.max_runs, alert.min_runs) == ("average_runtime", 300.0, 4, 2)
    assert alert.callback.endswith(".notify") and not alert.asynchronous
    from airstep.sdk.dag import DAG

    with DAG(
        "finance", deadline=DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, timedelta(1), AsyncCallback(notify_later))
    ) as dag:
        pass
    model = DagModel.from_dag(dag)
    assert model.deadlines[0].asynchronous
    assert DagModel.from_json(model.to_json()) == model
    with DAG("plain") as plain:
        pass
    assert "deadlines" not in DagModel.from_dag(plain).to_dict()  # (a model without alerts is unchanged)


def test_each_execution_of_a_run_arms_its_own_schedule_for_each_alert():
    names = {schedule_name("d", "r", clear, alert) for clear in (0, 1) for alert in (0, 1)}
    assert len(names) == 4 and all(n.startswith("deadline-") and len(n) <= 64 for n in names)
    assert schedule_name("d", "r", 0, 0) == schedule_name("d", "r", 0, 0)
