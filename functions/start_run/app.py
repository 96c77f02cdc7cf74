"""Start-run Lambda: EventBridge Scheduler fires -> one Step Functions execution per logical date."""

from airstep.runtime.run_starter import lambda_handler

__all__ = ["lambda_handler"]
