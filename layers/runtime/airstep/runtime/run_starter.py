"""Starts scheduled runs: EventBridge Scheduler invokes this with the schedule's fire time.

The execution name is derived from the logical date, so a duplicate delivery of the same fire
time never creates a second run (Step Functions rejects or returns the existing execution).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from airstep.contract import ScheduleTarget, execution_name, parse_time
from airstep.runtime.clients import client
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.scheduling import scheduled_run

logger = Logger(service=SERVICE_NAME)


def start_scheduled_run(event: dict[str, Any], sfn: Any) -> dict[str, Any]:
    """`event`: a ScheduleTarget's input, with EventBridge's scheduled time filled in."""
    target = ScheduleTarget.from_input(event)
    fired = parse_time(target.scheduled_time)
    assert fired is not None
    run = scheduled_run(target.dag_id, target.schedule, fired, target.timezone)
    name = execution_name(run.run_id)
    payload = json.dumps(run.to_input(), sort_keys=True)
    try:
        arn = sfn.start_execution(stateMachineArn=target.state_machine_arn, name=name, input=payload)["executionArn"]
        duplicate = False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        arn = target.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        duplicate = True
    logger.info("scheduled run", extra={"dag_id": run.dag_id, "run_id": run.run_id, "duplicate": duplicate})
    return {"run_id": run.run_id, "execution_arn": arn, "duplicate": duplicate}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return start_scheduled_run(event, client("stepfunctions"))
