"""SnsPublishOperator (airflow.providers.amazon.aws.operators.sns) as Step Functions' `sns:publish`,
with the provider's request: the message as `{"default": message}` JSON, attributes typed by value."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airstep.integration import Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text


def _default_message(message: Any) -> str:
    return json.dumps({"default": text(message)})


def _attribute(value: Any) -> dict[str, str]:
    """The provider's typing of a message attribute (bytes cannot travel in a state machine)."""
    if isinstance(value, str):
        return {"DataType": "String", "StringValue": value}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"DataType": "Number", "StringValue": str(value)}
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("binary message attributes are not supported by airstep")
    if hasattr(value, "__iter__"):  # the provider's json.dumps: a dict stays an object, a set cannot
        return {
            "DataType": "String.Array",
            "StringValue": json.dumps(value if isinstance(value, Mapping) else list(value)),
        }
    raise TypeError(f"values in MessageAttributes must be str, int, float or iterable; got {type(value).__name__}")


def _attributes(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    return {str(key): _attribute(item) for key, item in value.items()}


class SnsPublishOperator(AwsOperator):
    """Publishes a message to an SNS topic (or endpoint); returns `{"MessageId"}` (and a FIFO
    topic's `SequenceNumber`): boto3's response without its ResponseMetadata."""

    template_fields = (
        "target_arn",
        "message",
        "subject",
        "message_attributes",
        "message_deduplication_id",
        "message_group_id",
    )
    resource = "arn:aws:states:::sns:publish"
    fields = {
        "target_arn": Field("TargetArn", text),
        "message": Field("Message", _default_message),
        "subject": Field("Subject", text),
        "message_attributes": Field("MessageAttributes", _attributes),
        "message_deduplication_id": Field("MessageDeduplicationId", text),
        "message_group_id": Field("MessageGroupId", text),
    }
    constants = {"MessageStructure": "json"}
    returns = ("MessageId", "SequenceNumber")

    def __init__(
        self,
        *,
        target_arn: str,
        message: str,
        subject: str | None = None,
        message_attributes: dict[str, Any] | None = None,
        message_deduplication_id: str | None = None,
        message_group_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_arn = target_arn
        self.message = message
        self.subject = subject
        self.message_attributes = message_attributes or None
        self.message_deduplication_id = message_deduplication_id
        self.message_group_id = message_group_id

    def grants(self) -> tuple[Grant, ...]:
        topic = self.named(self.target_arn)
        return (Grant(("sns:Publish",), (topic if topic.startswith("arn:") else arn("sns", "*", "*", "*"),)),)
