"""The Lambda event source mappings that hand watched SQS queues' messages to the asset-events
function. After each reconcile of dags/, `sync` makes them what the deployed DAGs ask for: one per
queue that an `AssetWatcher` of a deployed DAG names, none for any other queue (whose messages then
stay queued). Lambda polls a mapped queue (at no charge to the environment while it is empty) and
deletes each message the function recorded; one it reports back (ReportBatchItemFailures) is
delivered again, as SQS redelivers.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from airstep.runtime.store.assets import queue_url

BATCH_SIZE = 10  # messages per invocation: each is an event of its own, so a batch only saves invocations
MAX_CONCURRENCY = 2  # Lambda's least: a burst waits on its queue rather than contend for one asset's counter
FUNCTION_TIMEOUT_SECONDS = 20  # the asset-events function's (template.yaml): Lambda maps no queue whose
# visibility timeout is shorter


class MappingsBusy(RuntimeError):
    """A mapping is still being created or deleted: the compile event's retry syncs again."""


def sync(lambda_client: Any, function_arn: str, watched: set[str]) -> dict[str, list[str]]:
    """Map each queue (ARN) of `watched` to the function, and unmap every other queue; the queues
    mapped and unmapped."""
    current: dict[str, list[str]] = {}  # queue -> its mappings (UUIDs), those being deleted aside
    pages = lambda_client.get_paginator("list_event_source_mappings").paginate(FunctionName=function_arn)
    for mapping in (m for page in pages for m in page["EventSourceMappings"]):
        if mapping.get("State") != "Deleting":
            current.setdefault(mapping["EventSourceArn"], []).append(mapping["UUID"])
    mapped, unmapped = sorted(watched - set(current)), sorted(set(current) - watched)
    for queue in mapped:
        _create(lambda_client, function_arn, queue)
    for queue in unmapped:
        for uuid in current[queue]:
            _delete(lambda_client, uuid)
    return {"mapped": mapped, "unmapped": unmapped}


def unreadable(sqs: Any, queue_arn: str) -> str | None:
    """Why Lambda would refuse to map the queue (it does not exist, or its visibility timeout is too
    short), or None."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url(queue_arn), AttributeNames=["VisibilityTimeout"])[
            "Attributes"
        ]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return "the queue does not exist"
        return exc.response.get("Error", {}).get("Message", str(exc))
    timeout = int(attributes["VisibilityTimeout"])
    if timeout < FUNCTION_TIMEOUT_SECONDS:
        return (
            f"its visibility timeout ({timeout} s) is under the asset-events function's timeout "
            f"({FUNCTION_TIMEOUT_SECONDS} s), so Lambda will not read it: raise it (2 minutes or more is best)"
        )
    return None


def _create(lambda_client: Any, function_arn: str, queue_arn: str) -> None:
    try:
        lambda_client.create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=function_arn,
            BatchSize=BATCH_SIZE,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": MAX_CONCURRENCY},
            Enabled=True,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceConflictException":  # its old one is going
            raise MappingsBusy(f"the mapping of {queue_arn} is still being deleted") from exc
        raise


def _delete(lambda_client: Any, uuid: str) -> None:
    try:
        lambda_client.delete_event_source_mapping(UUID=uuid)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ResourceInUseException":  # still being created
            raise MappingsBusy(f"event source mapping {uuid} is still being created") from exc
        if code != "ResourceNotFoundException":
            raise
