"""Starts runs: scheduled ones (EventBridge Scheduler invokes this with the schedule's fire time),
asset-triggered ones (the task runner invokes it with the DAGs an asset event was queued for) and a
TriggerDagRunOperator's (the task runner asks, and waits for the answer: airstep.runtime.triggering).

A scheduled run's execution name is derived from the logical date, so a duplicate delivery of the
same fire time never creates a second run (Step Functions refuses a second execution of that name);
an asset-triggered run is made once by the write that consumes its queue (airstep.runtime.assets).
Every run waits its turn behind the DAG's `max_active_runs` (airstep.runtime.admission).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from airstep.contract import ASSET_CONSUMERS, TRIGGER_RUN, ScheduleTarget, parse_time
from airstep.runtime import assets, triggering
from airstep.runtime.admission import admit
from airstep.runtime.clients import client
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.scheduling import scheduled_run
from airstep.runtime.store import MetadataStore, metadata_store

logger = Logger(service=SERVICE_NAME)


def start_scheduled_run(event: dict[str, Any], sfn: Any, store: MetadataStore) -> dict[str, Any]:
    """`event`: a ScheduleTarget's input, with EventBridge's scheduled time filled in. The run starts
    now, or waits `queued` while the DAG has `max_active_runs` runs active."""
    target = ScheduleTarget.from_input(event)
    fired = parse_time(target.scheduled_time)
    assert fired is not None
    run = scheduled_run(target.dag_id, target.schedule, fired, target.timezone)
    admitted = admit(store, sfn, run, target.state_machine_arn, target.max_active_runs, catchup=target.catchup)
    logger.info("scheduled run", extra={"dag_id": run.dag_id, "run_id": run.run_id, "state": admitted.state})
    return {
        "run_id": run.run_id,
        "state": admitted.state.value,
        "execution_arn": admitted.execution_arn,
        "duplicate": admitted.duplicate,
    }


def start_asset_runs(event: dict[str, Any], sfn: Any, store: MetadataStore) -> dict[str, Any]:
    """`event`: {"asset_consumers": [dag_id, ...]}, DAGs whose asset queues changed."""
    admitted = assets.start_runs(store, sfn, list(event["asset_consumers"]))
    for admission in admitted:
        logger.info("asset-triggered run", extra={"run_id": admission.run_id, "state": admission.state})
    return {"runs": [{"run_id": a.run_id, "state": a.state.value, "execution_arn": a.execution_arn} for a in admitted]}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if ASSET_CONSUMERS in event:
        return start_asset_runs(event, client("stepfunctions"), metadata_store())
    if TRIGGER_RUN in event:
        return triggering.start_triggered_run(event, client("stepfunctions"), metadata_store())
    return start_scheduled_run(event, client("stepfunctions"), metadata_store())
