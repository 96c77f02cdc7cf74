"""Compile Lambda: S3 DAG file created/removed -> state machines, schedules, DAG records."""

from airstep_compiler.deploy import lambda_handler

__all__ = ["lambda_handler"]
