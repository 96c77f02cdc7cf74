"""The task runner's process-wide state is safe under concurrent invocations (the local engine)."""

from __future__ import annotations

import threading

import pytest
from moto import mock_aws

from airstep.runtime import task_runner
from airstep.runtime.constants import TABLE_NAME_ENV


@pytest.fixture
def fresh_runner(monkeypatch):
    monkeypatch.setenv(TABLE_NAME_ENV, "airstep-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        task_runner.reset()
        yield
        task_runner.reset()


def test_concurrent_first_invocations_all_get_both_clients(fresh_runner):
    # Regression: the store used to be published before the Step Functions client was built, so a
    # concurrent first invocation could get `None` and lose a gate release (the run then hung).
    threads = 16
    barrier = threading.Barrier(threads)
    seen: list[tuple[object, object]] = []

    def first_call() -> None:
        barrier.wait()
        seen.append(task_runner._runtime())

    workers = [threading.Thread(target=first_call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(seen) == threads
    assert all(store is not None and sfn is not None for store, sfn in seen)
    assert len({id(store) for store, _ in seen}) == 1  # built once, shared by all
