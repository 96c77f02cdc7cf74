"""Run-tracker Lambda: Step Functions execution status events -> run records."""

from airstep.runtime.run_tracker import lambda_handler

__all__ = ["lambda_handler"]
