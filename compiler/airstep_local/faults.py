"""Fault injection for the local engine: AWS calls that fail the way AWS calls fail.

A `Faults` object is consulted before every Lambda invocation and every DynamoDB call of a local run
(`LocalSession.faults`); returning an error code makes that call fail with it, as the service would.
Tests and the fault-injection suite use it to prove that nothing airstep does turns such a failure
into a lost, stuck or wrong record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# (function name, event) -> an error code for the invocation, or None
InvokeFault = Callable[[str, dict[str, Any]], str | None]
# (operation, request) -> an error code for the DynamoDB call, or None
DynamoDBFault = Callable[[str, dict[str, Any]], str | None]

THROTTLED = "TooManyRequestsException"
SERVICE_ERROR = "ServiceException"
DYNAMODB_THROTTLED = "ProvisionedThroughputExceededException"
_STATUS = {THROTTLED: 429, DYNAMODB_THROTTLED: 400}


@dataclass
class Faults:
    invoke: InvokeFault | None = None
    dynamodb: DynamoDBFault | None = None
    # (function name, event) -> True to run the handler twice: Lambda delivers at least once
    duplicate: Callable[[str, dict[str, Any]], bool] | None = None
    injected: Counter[str] = field(default_factory=Counter)

    def duplicated(self, function: str, event: dict[str, Any]) -> bool:
        if self.duplicate is not None and self.duplicate(function, event):
            self.injected["lambda:duplicate"] += 1
            return True
        return False

    def before_invoke(self, function: str, event: dict[str, Any]) -> str | None:
        code = self.invoke(function, event) if self.invoke else None
        if code:
            self.injected[f"lambda:{code}"] += 1
        return code

    def before_dynamodb(self, operation: str, request: dict[str, Any]) -> None:
        code = self.dynamodb(operation, request) if self.dynamodb else None
        if code:
            self.injected[f"dynamodb:{code}"] += 1
            raise client_error(code, operation)


def client_error(code: str, operation: str) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"injected fault: {code}"},
        "ResponseMetadata": {"HTTPStatusCode": _STATUS.get(code, 500), "RequestId": "injected"},
    }
    return ClientError(response, operation)
