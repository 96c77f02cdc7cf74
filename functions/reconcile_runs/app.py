"""Reconcile-runs Lambda: every few minutes, settles runs whose final status event was lost."""

from airstep.runtime.run_reconciler import lambda_handler

__all__ = ["lambda_handler"]
