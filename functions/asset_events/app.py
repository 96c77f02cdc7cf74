"""Asset-events Lambda: an S3 object created (EventBridge) -> the s3:// assets it updates, and their consumers' runs."""

from airstep.runtime.asset_events import lambda_handler

__all__ = ["lambda_handler"]
