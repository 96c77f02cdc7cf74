"""The registry of per-process clients is safe under concurrent first use (the local engine)."""

from __future__ import annotations

import threading
import time

import pytest
from moto import mock_aws

from airstep.runtime.clients import Registry, client, registry
from airstep.runtime.constants import TABLE_NAME_ENV
from airstep.runtime.store import metadata_store


def test_concurrent_first_uses_get_one_whole_object():
    # Regression: the runner once published its store before its Step Functions client was built, so
    # a concurrent first invocation could get `None` and lose a gate release (the run then hung).
    fresh = Registry()
    built: list[object] = []

    def slow_factory() -> object:
        time.sleep(0.05)  # a client takes milliseconds to build: long enough for others to arrive
        made = object()
        built.append(made)
        return made

    threads = 16
    barrier = threading.Barrier(threads)
    seen: list[object] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(fresh.get("thing", slow_factory))

    workers = [threading.Thread(target=first_use) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(built) == 1
    assert seen == built * threads


def test_reset_forgets_every_client_at_once(monkeypatch):
    monkeypatch.setenv(TABLE_NAME_ENV, "airstep-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        registry.reset()
        store, sfn = metadata_store(), client("stepfunctions")
        assert metadata_store() is store and client("stepfunctions") is sfn
        registry.reset()
        assert metadata_store() is not store and client("stepfunctions") is not sfn
        registry.reset()


@pytest.mark.parametrize("module", ["connections", "runtime.dag_cache", "runtime.task_runner", "runtime.run_tracker"])
def test_no_module_keeps_a_client_of_its_own(module):
    import importlib

    loaded = importlib.import_module(f"airstep.{module}")
    private_globals = [name for name, value in vars(loaded).items() if name.startswith("_") and value is None]
    assert private_globals == [], f"airstep.{module} caches {private_globals} outside the registry"
