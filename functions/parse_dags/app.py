"""Parse Lambda: loads one DAG file of a bundle in a sandboxed process; has no AWS permissions."""

from airstep.runtime.dag_parser import lambda_handler

__all__ = ["lambda_handler"]
