"""LambdaInvokeFunctionOperator (airflow.providers.amazon.aws.operators.lambda_function) as
Step Functions' `lambda:invoke`: the function's payload is the task's XCom, as JSON text."""

from __future__ import annotations

from typing import Any

from airstep.integration import Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, json_value, text

INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


def _invocation_type(value: Any) -> str:
    if value not in INVOCATION_TYPES:
        raise ValueError(f"{value!r} is not one of {', '.join(INVOCATION_TYPES)}")
    return value


class LambdaInvokeFunctionOperator(AwsOperator):
    """Invokes an AWS Lambda function and returns its response payload (JSON text); a function
    error fails the try with the function's error type and message."""

    template_fields = ("function_name", "payload", "qualifier", "invocation_type")
    resource = "arn:aws:states:::lambda:invoke"
    fields = {
        "function_name": Field("FunctionName", text),
        "payload": Field("Payload", json_value),
        "qualifier": Field("Qualifier", text),
        "invocation_type": Field("InvocationType", _invocation_type),
        "client_context": Field("ClientContext", text),
    }
    returns_payload_text = True

    def __init__(
        self,
        *,
        function_name: str,
        log_type: str | None = None,
        keep_empty_log_lines: bool = True,
        qualifier: str | None = None,
        invocation_type: str | None = None,
        client_context: str | None = None,
        payload: bytes | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.function_name = function_name
        self.payload = payload
        self.log_type = log_type
        self.keep_empty_log_lines = keep_empty_log_lines
        self.qualifier = qualifier
        self.invocation_type = invocation_type
        self.client_context = client_context
        if log_type not in (None, "None"):
            self.refuse(
                "log_type",
                f"{log_type!r}: the function's log tail is not copied into the task's log (its own log group has it)",
            )

    def grants(self) -> tuple[Grant, ...]:
        name = self.named(self.function_name)
        if name.startswith("arn:"):  # arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
            function = ":".join(name.split(":")[:7])
        elif ":function:" in name:  # <account>:function:<name>[:<qualifier>]
            account, _, rest = name.partition(":function:")
            function = arn("lambda", f"function:{rest.split(':')[0]}", account=account)
        else:  # <name>[:<qualifier>]
            function = arn("lambda", f"function:{name.split(':')[0]}")
        return (Grant(("lambda:InvokeFunction",), (function, f"{function}:*")),)
