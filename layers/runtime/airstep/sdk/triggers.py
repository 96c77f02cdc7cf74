"""The event triggers an `AssetWatcher` may watch: `MessageQueueTrigger` over an Amazon SQS queue
(Airflow's common.messaging provider, with the amazon provider's SqsSensorTrigger arguments).

Airflow runs the trigger in its triggerer, polling the queue; airstep has no triggerer: the queue
feeds the `asset-events` function through a Lambda event source mapping that a deploy creates
(airstep.runtime.asset_events), so nothing airstep runs polls, and each message updates the asset.
"""

from __future__ import annotations

import re
from typing import Any

# Airflow's QUEUE_REGEXP (amazon provider, queues/sqs.py), and China's regions' URLs
SQS_QUEUE_URL = re.compile(r"^https://sqs\.[^.]+\.amazonaws\.com(\.cn)?/[0-9]+/[^/]+$")
# SqsSensorTrigger's arguments about how and as whom to poll: the event source mapping polls, with
# the asset-events function's role, so they change nothing here
_POLLING = frozenset(
    {
        "aws_conn_id",
        "max_messages",
        "num_batches",
        "wait_time_seconds",
        "visibility_timeout",
        "waiter_delay",
        "region_name",
        "verify",
        "botocore_config",
    }
)
_FILTERING = ("message_filtering", "message_filtering_match_values", "message_filtering_config")


class BaseEventTrigger:
    """What an `AssetWatcher` accepts: a trigger whose events update assets."""


class MessageQueueTrigger(BaseEventTrigger):
    """`MessageQueueTrigger(scheme="sqs", sqs_queue=URL)`, or the older `MessageQueueTrigger(queue=URL)`:
    each message the queue receives is an event of the assets that watch it."""

    def __init__(
        self,
        *,
        queue: str | None = None,
        scheme: str | None = None,
        trigger_queue: str | None = None,
        **kwargs: Any,
    ) -> None:
        if queue is None and scheme is None:
            raise ValueError("Either `queue` or `scheme` parameter must be provided.")
        if queue is None:
            if scheme != "sqs":
                raise ValueError(
                    f"The scheme '{scheme}' is not recognized by any of the registered providers "
                    "(airstep watches Amazon SQS queues: scheme='sqs')"
                )
            if "sqs_queue" not in kwargs:
                raise TypeError("MessageQueueTrigger(scheme='sqs') needs sqs_queue=<the queue's URL>")
            queue = kwargs.pop("sqs_queue")
        if not isinstance(queue, str) or not SQS_QUEUE_URL.match(queue):
            raise ValueError(
                f"The queue '{queue}' is not recognized by any of the registered providers "
                "(airstep watches Amazon SQS queues: https://sqs.<region>.amazonaws.com/<account>/<name>)"
            )
        _check_arguments(kwargs)
        self.sqs_queue = queue
        self.trigger_queue = trigger_queue  # the triggerer queue it would run in: airstep has no triggerer
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"MessageQueueTrigger(sqs_queue={self.sqs_queue!r})"


def _check_arguments(kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - _POLLING - set(_FILTERING) - {"delete_message_on_reception"})
    if unknown:
        raise TypeError(f"SqsSensorTrigger.__init__() got an unexpected keyword argument {unknown[0]!r}")
    if kwargs.get("message_filtering") is not None:  # without it, SqsSensorTrigger ignores the others
        raise ValueError(
            "MessageQueueTrigger(message_filtering=...) is not supported by airstep: every message of the queue "
            "updates the asset (filter in the consumer's first task, or send only the messages that count)"
        )
    if kwargs.get("delete_message_on_reception", True) is not True:
        raise ValueError(
            "MessageQueueTrigger(delete_message_on_reception=False) is not supported by airstep: a message is "
            "deleted from the queue once its asset event is recorded"
        )
