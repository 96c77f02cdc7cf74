"""Starts scheduled runs: EventBridge Scheduler invokes this with the schedule's fire time.

The execution name is derived from the logical date, so a duplicate delivery of the same fire
time never creates a second run (Step Functions rejects or returns the existing execution).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.context import parse_time
from airstep.runtime.scheduling import execution_name, scheduled_run

logger = Logger(service=SERVICE_NAME)
_sfn: Any = None


def start_scheduled_run(event: dict[str, Any], sfn: Any) -> dict[str, Any]:
    """`event`: {"dag_id", "state_machine_arn", "schedule", "timezone", "scheduled_time"}."""
    fired = parse_time(event["scheduled_time"])
    assert fired is not None
    run = scheduled_run(event["schedule"], fired, event.get("timezone", "UTC"))
    name = execution_name(run.run_id)
    payload = json.dumps(run.execution_input(event["dag_id"]), sort_keys=True)
    try:
        arn = sfn.start_execution(stateMachineArn=event["state_machine_arn"], name=name, input=payload)["executionArn"]
        duplicate = False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        arn = event["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{name}"
        duplicate = True
    logger.info("scheduled run", extra={"dag_id": event["dag_id"], "run_id": run.run_id, "duplicate": duplicate})
    return {"run_id": run.run_id, "execution_arn": arn, "duplicate": duplicate}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _sfn
    if _sfn is None:
        _sfn = boto3.client("stepfunctions")
    return start_scheduled_run(event, _sfn)
