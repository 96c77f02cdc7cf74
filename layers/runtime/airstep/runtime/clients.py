"""The process's AWS clients and caches, made on first use and shared by warm invocations.

Every per-process object of the runtime and the compile function lives in `registry`, so the local
engine, which runs many functions' invocations in one process against a fresh moto, forgets them all
with one `registry.reset()`. Each object is built under the registry's lock and published whole, so
concurrent first invocations (the local engine runs many at once) never see a half-built one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    def __init__(self) -> None:
        self._made: dict[str, Any] = {}
        self._lock = threading.RLock()

    def get(self, name: str, factory: Callable[[], T]) -> T:
        """The object registered as `name`, built by `factory` the first time."""
        with self._lock:
            if name not in self._made:
                self._made[name] = factory()
            return self._made[name]

    def reset(self) -> None:
        with self._lock:
            self._made.clear()


registry = Registry()


# The task runner waits for the executor's answer (up to Lambda's 15 minutes): botocore's 60 s read
# timeout would cut the wait short and its retries would invoke the try again while it still runs.
_CONFIG = {"lambda": {"read_timeout": 960, "connect_timeout": 10, "retries": {"max_attempts": 1}}}


def client(service: str) -> Any:
    """The process's boto3 client for `service` (default session, region and credentials)."""
    import boto3
    from botocore.config import Config

    options = _CONFIG.get(service)
    return registry.get(
        f"client:{service}", lambda: boto3.client(service, config=Config(**options) if options else None)
    )
