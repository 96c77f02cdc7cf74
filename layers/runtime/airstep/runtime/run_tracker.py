"""Keeps each run's record true from `Step Functions Execution Status Change` events.

EventBridge delivers at least once and in any order: every write is conditional on the status
rank (RUNNING < any final status), so a duplicate or a late RUNNING never moves a run backwards.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from airstep.contract import ASSET_CONSUMERS, DagRun, time_out_event
from airstep.runtime.admission import release
from airstep.runtime.clients import client
from airstep.runtime.constants import ASSET_RUNS_FUNCTION_ENV, SERVICE_NAME
from airstep.runtime.store import MetadataStore, RunKey, metadata_store
from airstep.runtime.usage import COUNTING_BUDGET_SECONDS, count_transitions
from airstep.states import RunState, RunType

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace="airstep", service=SERVICE_NAME)
# The metric each final status adds (alarms in template.yaml watch them).
EXECUTION_STATUS = "execution status"  # a log line: template.yaml's dashboard queries it
STATUS_METRICS = {"FAILED": "RunsFailed", "TIMED_OUT": "RunsTimedOut", "ABORTED": "RunsAborted"}

RUN_STATES = {
    "RUNNING": RunState.RUNNING,
    "SUCCEEDED": RunState.SUCCESS,
    "FAILED": RunState.FAILED,
    "TIMED_OUT": RunState.FAILED,
    "ABORTED": RunState.FAILED,
}


def track(
    event: dict[str, Any], store: MetadataStore, sfn: Any = None, budget_seconds: float = COUNTING_BUDGET_SECONDS
) -> dict[str, Any]:
    """Apply the event's status to its run's record; then, for a final one, add the execution's
    transitions, counted from its history through `sfn` (None: not counted) within `budget_seconds`."""
    detail = event["detail"]
    status = detail["status"]
    if status not in RUN_STATES:
        return {"tracked": False, "reason": f"status {status}"}
    try:
        run = DagRun.from_input(json.loads(detail.get("input") or "{}"))
    except (ValueError, KeyError, TypeError):
        return {"tracked": False, "reason": "not an airstep execution"}
    applied = store.track_execution(
        run,
        status=status,
        state=RUN_STATES[status],
        execution_arn=detail["executionArn"],
        start=_iso(detail.get("startDate")),
        end=_iso(detail.get("stopDate")) or (None if status == "RUNNING" else datetime.now(UTC).isoformat()),
        error=_error(detail),
    )
    if sfn is not None and status != "RUNNING":  # after the status: what it cost never holds that up
        _add_transitions(store, sfn, RunKey(run.dag_id, run.run_id), detail["executionArn"], budget_seconds)
    logger.info(
        EXECUTION_STATUS, extra={"dag_id": run.dag_id, "run_id": run.run_id, "status": status, "applied": applied}
    )
    return {"tracked": applied, "dag_id": run.dag_id, "run_id": run.run_id, "status": status}


def status_event(detail: dict[str, Any]) -> dict[str, Any]:
    """Wrap an execution description as the EventBridge event AWS sends (the local engine and the
    reconciler feed these)."""
    return {"source": "aws.states", "detail-type": "Step Functions Execution Status Change", "detail": detail}


def execution_detail(description: dict[str, Any]) -> dict[str, Any]:
    """An event's detail from a DescribeExecution answer (what AWS would have sent)."""
    detail = {k: description.get(k) for k in ("executionArn", "stateMachineArn", "name", "status", "input")}
    detail.update(startDate=description.get("startDate"), stopDate=description.get("stopDate"))
    detail.update(error=description.get("error"), cause=description.get("cause"))
    return detail


def track_and_count(
    event: dict[str, Any],
    store: MetadataStore,
    sfn: Any,
    functions: Any,
    budget_seconds: float = COUNTING_BUDGET_SECONDS,
) -> dict[str, Any]:
    """Track the event, count a final failure the first time it is applied (alarms watch it), and on
    any final status free the run's slot and start the runs waiting for it (a duplicate event frees
    nothing twice, and a retried one frees a slot its first delivery could not)."""
    result = track(event, store, sfn, budget_seconds)
    metric = STATUS_METRICS.get(result.get("status", ""))
    if result["tracked"] and metric:  # counted once: duplicates are not applied
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
    return {**result, **after_end(event, result, store, sfn, functions)}


def after_end(
    event: dict[str, Any], tracked: dict[str, Any], store: MetadataStore, sfn: Any, functions: Any
) -> dict[str, Any]:
    """What a run's end sets off once its status is tracked: its slot frees and the runs waiting for it
    start (on any final status: a retried event frees a slot its first delivery could not); a run
    that timed out (its dagrun_timeout) is ended by its task runner, the first time it is applied."""
    status = tracked.get("status")
    if status not in RUN_STATES or status == "RUNNING":
        return {}
    detail = event["detail"]
    run_input = json.loads(detail.get("input") or "{}")
    run = DagRun.from_input(run_input)
    done: dict[str, Any] = {"started": sorted(release(store, sfn, run))}
    function = os.environ.get(ASSET_RUNS_FUNCTION_ENV)
    if run.run_type is RunType.ASSET_TRIGGERED and function:  # every delivery: start-run is idempotent
        # its DAG's asset queue may have waited for this slot (max_active_runs): start-run looks again
        request = json.dumps({ASSET_CONSUMERS: [run.dag_id]}).encode()
        functions.invoke(FunctionName=function, InvocationType="Event", Payload=request)
    if status == "TIMED_OUT" and tracked["tracked"]:
        described = sfn.describe_state_machine_for_execution(executionArn=detail["executionArn"])
        function, request = time_out_event(json.loads(described["definition"]), detail["executionArn"], run_input)
        functions.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(request).encode())
        done["timed_out"] = True
    return done


def _add_transitions(store: MetadataStore, sfn: Any, run: RunKey, execution_arn: str, budget: float) -> None:
    """Count the ended execution's transitions and add them to its run's, once (a redelivered event
    counts again and adds nothing); a history that cannot be read leaves them uncounted."""
    try:
        store.add_transitions(run, execution_arn, count_transitions(sfn, execution_arn, budget))
    except Exception as exc:  # noqa: BLE001 - informative: the run's status is recorded already
        logger.warning("transitions not counted", extra={"execution": execution_arn, "error": str(exc)})


def _iso(epoch_millis: Any) -> str | None:
    if epoch_millis is None:
        return None
    if isinstance(epoch_millis, datetime):
        return epoch_millis.astimezone(UTC).isoformat()
    return datetime.fromtimestamp(epoch_millis / 1000, tz=UTC).isoformat()


def _error(detail: dict[str, Any]) -> str | None:
    if detail.get("status") in ("RUNNING", "SUCCEEDED"):
        return None
    if detail.get("status") == "TIMED_OUT" and not detail.get("cause"):
        return "the run took longer than its dagrun_timeout"
    error, cause = detail.get("error"), detail.get("cause")
    if error and cause:
        return f"{error}: {cause}"
    return error or cause or detail["status"].lower().replace("_", " ")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return track_and_count(event, metadata_store(), client("stepfunctions"), client("lambda"))
