"""Starts scheduled runs: EventBridge Scheduler invokes this with the schedule's fire time.

The execution name is derived from the logical date, so a duplicate delivery of the same fire
time never creates a second run (Step Functions refuses a second execution of that name), and the
run waits its turn behind the DAG's `max_active_runs` (airstep.runtime.admission).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from airstep.contract import ScheduleTarget, parse_time
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


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return start_scheduled_run(event, client("stepfunctions"), metadata_store())
