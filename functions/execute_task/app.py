"""Execute-task Lambda: runs one try of a task's code under the task role (nothing else runs user code)."""

from airstep.runtime.executor import lambda_handler

__all__ = ["lambda_handler"]
