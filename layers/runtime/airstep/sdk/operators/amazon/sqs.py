"""SqsPublishOperator (airflow.providers.amazon.aws.operators.sqs) as Step Functions'
`sqs:sendMessage`, with the provider's request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airstep.integration import Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text, whole_number


def _attributes(value: Any) -> dict[str, Any]:
    """SQS's MessageAttributes, as given (binary values cannot travel in a state machine)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    for name, attribute in value.items():
        if not isinstance(attribute, Mapping) or "DataType" not in attribute:
            raise TypeError(f"attribute {name!r} must be a dict with a DataType, as SQS takes it")
        if "BinaryValue" in attribute or "BinaryListValues" in attribute:
            raise TypeError(f"attribute {name!r}: binary message attributes are not supported by airstep")
    return dict(value)


class SqsPublishOperator(AwsOperator):
    """Sends a message to an SQS queue; returns `{"MessageId", "MD5OfMessageBody"}` (and
    `MD5OfMessageAttributes`, a FIFO queue's `SequenceNumber`): boto3's response without its
    ResponseMetadata."""

    template_fields = (
        "sqs_queue",
        "message_content",
        "delay_seconds",
        "message_attributes",
        "message_group_id",
        "message_deduplication_id",
    )
    resource = "arn:aws:states:::sqs:sendMessage"
    fields = {
        "sqs_queue": Field("QueueUrl", text),
        "message_content": Field("MessageBody", text),
        "delay_seconds": Field("DelaySeconds", whole_number),
        "message_attributes": Field("MessageAttributes", _attributes),
        "message_group_id": Field("MessageGroupId", text),
        "message_deduplication_id": Field("MessageDeduplicationId", text),
    }
    returns = (
        "MessageId",
        "MD5OfMessageBody",
        "MD5OfMessageAttributes",
        "MD5OfMessageSystemAttributes",
        "SequenceNumber",
    )

    def __init__(
        self,
        *,
        sqs_queue: str,
        message_content: str,
        message_attributes: dict[str, Any] | None = None,
        delay_seconds: int = 0,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sqs_queue = sqs_queue
        self.message_content = message_content
        self.delay_seconds = delay_seconds
        self.message_attributes = message_attributes or None
        self.message_group_id = message_group_id
        self.message_deduplication_id = message_deduplication_id

    def grants(self) -> tuple[Grant, ...]:
        return (Grant(("sqs:SendMessage",), (queue_arn(self.named(self.sqs_queue)),)),)


def queue_arn(url: str) -> str:
    """A queue's ARN from its URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`; `*` for
    what a template leaves unknown)."""
    host, _, path = url.partition("://")[2].partition("/")
    account, _, name = path.partition("/")
    region = host.split(".")[1] if host.startswith("sqs.") and host.count(".") >= 2 else "*"
    if not account or not name or "*" in account:
        return arn("sqs", "*", region, account if account and "*" not in account else "*")
    return arn("sqs", name, region, account)
