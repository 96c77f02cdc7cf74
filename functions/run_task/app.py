"""Task-runner Lambda: runs one task try (and the gate, fail and finalize steps) per invocation."""

from airstep.runtime.task_runner import lambda_handler

__all__ = ["lambda_handler"]
