"""Runs start within their group's limit and wait `queued` beyond it; every way a run can end frees
its slot exactly once, and a holder that stopped half-way never keeps a slot (moto: executions stay
RUNNING until the test stops them)."""

from datetime import UTC, datetime, timedelta

from airstep.contract import DagRun
from airstep.runtime.admission import admit, reclaim, slot_group
from airstep.runtime.run_reconciler import reconcile_runs
from airstep.runtime.run_tracker import execution_detail, status_event, track, track_and_count
from airstep.runtime.scheduling import manual_run
from airstep.runtime.store import QueuedRun, RunKey
from airstep.states import RunState, RunType

LAMBDA = None  # no run here times out: the tracker never invokes a function
DAY = datetime(2026, 11, 1, tzinfo=UTC)


def scheduled(day: int, run_type: RunType = RunType.SCHEDULED) -> DagRun:
    when = DAY + timedelta(days=day)
    return DagRun("etl", f"{run_type}__{when.isoformat()}", run_type, when, when, when)


def end(store, sfn, admitted, status="SUCCEEDED"):
    """The run's execution ends and its final status event reaches the tracker."""
    sfn.stop_execution(executionArn=admitted.execution_arn)
    description = sfn.describe_execution(executionArn=admitted.execution_arn)
    return track_and_count(status_event(execution_detail({**description, "status": status})), store, sfn, LAMBDA)


def state(store, run):
    record = store.get_run(RunKey(run.dag_id, run.run_id))
    return record.state if record else None


def test_runs_beyond_the_limit_wait_queued_and_start_as_slots_free(aws):
    store, sfn, arn = aws
    runs = [scheduled(day) for day in range(4)]
    admitted = [admit(store, sfn, run, arn, limit=2) for run in runs]
    assert [a.state for a in admitted] == ["running", "running", "queued", "queued"]
    assert [state(store, run) for run in runs] == ["running", "running", "queued", "queued"]
    assert {r.run_id for r in store.runs_of_dag("etl")} == {run.run_id for run in runs}  # queued runs are listed
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2  # a queued run holds no compute

    result = end(store, sfn, admitted[0])
    assert result["started"] == [runs[2].run_id]  # the oldest queued run takes the freed slot
    assert state(store, runs[2]) == "running" and state(store, runs[3]) == "queued"
    assert end(store, sfn, admitted[0])["started"] == []  # a duplicate final event frees nothing twice
    assert len(store.slot_holders("etl")) == 2
    end(store, sfn, admitted[1], status="ABORTED")  # every final status frees the slot
    assert state(store, runs[3]) == "running"


def test_a_repeated_start_is_a_duplicate_and_starts_nothing(aws):
    store, sfn, arn = aws
    first = admit(store, sfn, scheduled(0), arn, limit=1)
    again = admit(store, sfn, scheduled(0), arn, limit=1)
    assert (again.duplicate, again.state, again.execution_arn) == (True, "running", first.execution_arn)
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_without_catchup_a_newer_scheduled_run_supersedes_the_queued_ones(aws):
    """Airflow's catchup=False: when a slot frees, only the latest scheduled run starts; a manual run
    waits its turn whatever its date."""
    store, sfn, arn = aws
    first = admit(store, sfn, scheduled(0), arn, limit=1, catchup=False)
    manual = manual_run("etl", DAY + timedelta(days=1, hours=1), None)
    for run in (scheduled(1), manual, scheduled(2), scheduled(3)):
        assert admit(store, sfn, run, arn, limit=1, catchup=False).state == "queued"
    result = end(store, sfn, first)
    assert result["started"] == [manual.run_id]  # the 2nd and 3rd are superseded by the 4th; the manual run waits
    second = admit(store, sfn, manual, arn, limit=1)
    assert end(store, sfn, second)["started"] == [scheduled(3).run_id]
    assert state(store, scheduled(1)) is None
    assert state(store, scheduled(2)) is None  # never created, as in Airflow


def test_a_backfill_counts_against_its_own_limit(aws):
    store, sfn, arn = aws
    assert admit(store, sfn, scheduled(0), arn, limit=1).state == "running"
    backfill = [scheduled(day, RunType.BACKFILL) for day in (5, 6)]
    assert [admit(store, sfn, run, arn, limit=1).state for run in backfill] == ["running", "queued"]
    assert slot_group(backfill[0]) == "etl#backfill"
    assert admit(store, sfn, scheduled(1), arn, limit=1).state == "queued"


def test_a_holder_that_stopped_between_slot_and_start_gives_its_slot_back(aws):
    """The promoter took a slot and died before starting the execution: the reconciler finds the
    queue waiting, frees the slot (no such execution), and starts the run."""
    store, sfn, arn = aws
    assert admit(store, sfn, scheduled(0), arn, limit=2).state == "running"
    ghost = scheduled(1)
    store.enqueue(QueuedRun("etl", ghost.logical_date.isoformat(), ghost, arn), 2, "2026-11-01T00:00:00+00:00")
    taken = "2026-11-01T00:00:00+00:00"  # long ago: no start of it can still be in flight
    store.take_slot("etl", ghost.run_id, arn.replace(":stateMachine:", ":execution:") + ":never-started", taken)
    assert len(store.slot_holders("etl")) == 2 and len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert reconcile_runs(store, sfn, LAMBDA, now=later)["started"] == [ghost.run_id]
    assert len(store.slot_holders("etl")) == 2 and state(store, ghost) == "running"
    assert reclaim(store, sfn, "etl", taken_before=later.isoformat()) == {}  # nothing left to give back


def test_a_slot_just_taken_for_a_start_in_flight_is_not_reclaimed(aws):
    """A promoter has taken a slot and is starting the execution: a reclaim in that moment must not
    give the slot to another run (that would make limit + 1 runs active)."""
    store, sfn, arn = aws
    admit(store, sfn, scheduled(0), arn, limit=1)
    store.free_slot("etl", scheduled(0).run_id)
    now = datetime.now(UTC).isoformat()
    store.take_slot("etl", "in-flight", arn.replace(":stateMachine:", ":execution:") + ":in-flight", now)
    assert admit(store, sfn, scheduled(1), arn, limit=1).state == "queued"
    assert reclaim(store, sfn, "etl", taken_before=(datetime.now(UTC) - timedelta(minutes=10)).isoformat()) == {}
    assert list(store.slot_holders("etl")) == ["in-flight"]


def test_a_run_step_functions_refuses_fails_and_the_queue_goes_on(aws):
    """A queued run whose start is refused for good (an input over Step Functions' 256 KiB) fails with
    why, frees its slot, and the run behind it starts."""
    from botocore.exceptions import ClientError

    store, real_sfn, arn = aws

    class RefusesBigInputs:  # moto does not enforce the 256 KiB input quota; Step Functions does
        def __getattr__(self, name):
            return getattr(real_sfn, name)

        def start_execution(self, **request):
            if len(request["input"]) > 262_144:
                error = {"Error": {"Code": "InvalidExecutionInput", "Message": "input too large"}}
                raise ClientError(error, "StartExecution")
            return real_sfn.start_execution(**request)

    sfn = RefusesBigInputs()
    holder = admit(store, sfn, scheduled(0), arn, limit=1)
    big = DagRun("etl", "manual__big", RunType.MANUAL, DAY, DAY, DAY, {"blob": "x" * 300_000})
    assert admit(store, sfn, big, arn, limit=1, order="1").state == "queued"
    after = scheduled(5)
    assert admit(store, sfn, after, arn, limit=1).state == "queued"
    assert end(store, sfn, holder)["started"] == [after.run_id]
    record = store.get_run(RunKey("etl", "manual__big"))
    assert record.state == "failed" and "InvalidExecutionInput" in record.error


def test_a_raised_limit_starts_queued_runs_at_once(aws):
    from airstep.runtime.admission import set_run_limit

    store, sfn, arn = aws
    admitted = [admit(store, sfn, scheduled(day), arn, limit=1) for day in range(3)]
    assert [a.state for a in admitted] == ["running", "queued", "queued"]
    assert sorted(set_run_limit(store, sfn, "etl", 3)) == [scheduled(1).run_id, scheduled(2).run_id]


def test_a_run_queued_again_is_a_duplicate(aws):
    store, sfn, arn = aws
    admit(store, sfn, scheduled(0), arn, limit=1)
    assert admit(store, sfn, scheduled(1), arn, limit=1).state == "queued"
    again = admit(store, sfn, scheduled(1), arn, limit=1)
    assert (again.state, again.duplicate) == ("queued", True)


def test_a_slot_whose_release_was_lost_comes_back_through_the_reconciler(aws):
    """A run ended and its record says so, but its slot was never freed (the tracker failed after
    writing): once a run has waited past the grace period, the reconciler frees it and starts the run."""
    store, sfn, arn = aws
    holder = admit(store, sfn, scheduled(0), arn, limit=1)
    waiting = scheduled(1)
    assert admit(store, sfn, waiting, arn, limit=1).state == "queued"
    sfn.stop_execution(executionArn=holder.execution_arn)
    description = sfn.describe_execution(executionArn=holder.execution_arn)
    assert track(status_event(execution_detail(description)), store)["tracked"]  # ...and the slot not freed
    later = datetime.now(UTC) + timedelta(minutes=11)
    result = reconcile_runs(store, sfn, LAMBDA, now=later)
    assert result["started"] == [waiting.run_id]
    assert state(store, waiting) == "running"
    assert reconcile_runs(store, sfn, LAMBDA, now=later)["started"] == []


def test_a_queued_run_whose_dag_is_gone_is_dropped(aws):
    store, sfn, arn = aws
    holder = admit(store, sfn, scheduled(0), arn, limit=1)
    admit(store, sfn, scheduled(1), arn, limit=1)
    sfn.stop_execution(executionArn=holder.execution_arn)
    description = sfn.describe_execution(executionArn=holder.execution_arn)
    sfn.delete_state_machine(stateMachineArn=arn)  # the DAG's file was removed
    result = track_and_count(status_event(execution_detail({**description, "status": "SUCCEEDED"})), store, sfn, LAMBDA)
    assert result["started"] == [] and state(store, scheduled(1)) == "failed"
    assert "DAG was removed" in store.get_run(RunKey("etl", scheduled(1).run_id)).error
    assert store.queued_runs("etl") == [] and store.slot_holders("etl") == {}
    assert state(store, scheduled(0)) == RunState.SUCCESS


def test_a_queue_item_left_behind_by_a_promoter_that_stopped_is_not_started_again(aws):
    """The promoter started the run but stopped before dequeuing it; the run ended. When a slot frees,
    the stale item is dropped and the next run gets the slot."""
    store, sfn, arn = aws
    first = admit(store, sfn, scheduled(0), arn, limit=1)
    stale = QueuedRun("etl", scheduled(0).logical_date.isoformat(), scheduled(0), arn)
    store.enqueue(stale, 1, "2026-11-01T00:00:00+00:00")  # as the stopped promoter left it
    waiting = scheduled(1)
    assert admit(store, sfn, waiting, arn, limit=1).state == "queued"
    assert end(store, sfn, first)["started"] == [waiting.run_id]
    assert store.queued_runs("etl") == []
