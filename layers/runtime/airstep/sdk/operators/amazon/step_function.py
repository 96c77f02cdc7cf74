"""StepFunctionStartExecutionOperator (airflow.providers.amazon.aws.operators.step_function) as Step
Functions' `states:startExecution`: it returns the execution's ARN at once, as the provider does; with
`deferrable=True` the provider waits for the execution to end, and so does `.sync:2`, holding nothing."""

from __future__ import annotations

from typing import Any

from airstep.integration import Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, json_value, text

START = "arn:aws:states:::states:startExecution"
START_AND_WAIT = "arn:aws:states:::states:startExecution.sync:2"


def _input(value: Any) -> Any:
    """The provider's input: a dict, or JSON text (kept as text when it holds a JSON string: Step
    Functions would hand the bare string on)."""
    if isinstance(value, dict):
        return dict(value)
    parsed = json_value(value)
    return value if isinstance(parsed, str) else parsed


class StepFunctionStartExecutionOperator(AwsOperator):
    """Starts an execution of a state machine and returns its ARN; deferrable, it waits for the
    execution to succeed (a failed, timed out or aborted execution fails the try)."""

    template_fields = ("state_machine_arn", "name", "state_machine_input", "is_redrive_execution")
    resource = START
    fields = {
        "state_machine_arn": Field("StateMachineArn", text),
        "name": Field("Name", text),
        "state_machine_input": Field("Input", _input),
    }
    returns = ("ExecutionArn",)
    returns_value = True

    def __init__(
        self,
        *,
        state_machine_arn: str,
        name: str | None = None,
        is_redrive_execution: bool = False,
        state_machine_input: dict[str, Any] | str | None = None,
        waiter_max_attempts: int = 30,
        waiter_delay: int = 60,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.state_machine_arn = state_machine_arn
        self.name = name
        self.is_redrive_execution = is_redrive_execution
        self.state_machine_input = state_machine_input
        self.waiter_max_attempts = waiter_max_attempts
        self.waiter_delay = waiter_delay
        self.deferrable = deferrable
        if is_redrive_execution:
            self.refuse("is_redrive_execution", "a redrive of a failed execution is not a call airstep makes")

    def call_resource(self) -> str:
        return START_AND_WAIT if self.deferrable else START

    def wait_seconds(self) -> float | None:
        return float(self.waiter_max_attempts * self.waiter_delay) if self.deferrable else None

    def grants(self) -> tuple[Grant, ...]:
        machine = self.named(self.state_machine_arn)
        if not machine.startswith("arn:"):
            machine = arn("states", "stateMachine:*")
        grants = [Grant(("states:StartExecution",), (machine,))]
        if self.deferrable:  # .sync:2: Step Functions watches the execution through an EventBridge rule it manages
            execution = machine.replace(":stateMachine:", ":execution:", 1)
            executions = execution if execution.endswith("*") else f"{execution}:*"
            grants.append(Grant(("states:DescribeExecution", "states:StopExecution"), (executions,)))
            grants.append(Grant(("events:PutTargets", "events:PutRule", "events:DescribeRule"), (SYNC_RULE,)))
        return tuple(grants)


SYNC_RULE = arn("events", "rule/StepFunctionsGetEventsForStepFunctionsExecutionRule")
