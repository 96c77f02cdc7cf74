"""Runs user code with a deadline: past it, the code is interrupted and the try ends as timed out.

The code runs in a worker thread that the caller waits for. At the deadline AirflowTaskTimeout is
raised inside the worker (at its next Python instruction: a subprocess it waits on is killed by
`subprocess.run`'s own cleanup), and the caller stops waiting after a short grace period either way,
so a try always ends within its deadline plus the grace, and its record says why.
"""

from __future__ import annotations

import atexit
import contextvars
import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

from airstep.errors import AirflowTaskTimeout

GRACE_SECONDS = 1.0
EXIT_WAIT_SECONDS = 5.0
# Workers that outlived their deadline (blocked in C code when interrupted). At exit the process
# gives them a moment to end: a daemon thread still writing to stdout while Python shuts down can
# abort the interpreter.
_outliving: set[threading.Thread] = set()


def call_with_deadline(fn: Callable[[], Any], seconds: float, message: str) -> Any:
    """`fn()`'s result, or AirflowTaskTimeout(message) when it runs longer than `seconds`."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()  # the worker sees what the caller's context holds

    def work() -> None:
        try:
            outcome["result"] = context.run(fn)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="airstep-task", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        _interrupt(worker)
        worker.join(GRACE_SECONDS)
        if worker.is_alive():
            _outliving.add(worker)
        raise AirflowTaskTimeout(message)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


@atexit.register
def _let_outliving_workers_end() -> None:
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    for worker in list(_outliving):
        worker.join(max(deadline - time.monotonic(), 0.0))


def _interrupt(worker: threading.Thread) -> None:
    """Raise AirflowTaskTimeout inside `worker` at its next Python instruction."""
    assert worker.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(AirflowTaskTimeout))
