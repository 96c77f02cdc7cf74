"""The `airstep` command run as a process of its own, forked from one that has imported it already.

A fresh interpreter spends about two seconds importing the CLI, boto3 and moto's interpreter before a
local run begins; the tests run the command some two hundred times. A zygote process imports them once
(importing only: it runs nothing, starts no thread and no mock) and forks a child per command, as
multiprocessing's forkserver does: the child has its own pid, working directory, environment, signals
and streams, runs `airstep_cli.main.main()` with the given arguments, and ends with its exit code, as
`python -m airstep_cli.main` would. A call whose environment differs from the zygote's runs in a fresh
interpreter instead (a module may have read the environment as it was imported).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ZYGOTE = r"""
import importlib, json, os, signal, sys, threading, traceback

import airstep_cli.main
import airstep_local.aws
import airstep_local.engine
from moto.moto_api._internal import mock_random

airstep_local.aws.import_interpreter()
for service in ("dynamodb", "s3", "iam", "logs", "scheduler", "events", "sts", "cloudwatch"):
    for part in ("models", "responses"):
        importlib.import_module(f"moto.{service}.{part}")
assert threading.active_count() == 1, "the zygote may not fork with threads running"
sys.stdout.write("ready\n")
sys.stdout.flush()

for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(request["cwd"])
            mock_random.seed()  # (the standard library's random reseeds itself in a child; moto's does not)
            os.environ.clear()
            os.environ.update(request["env"])
            for fd, path, flags in (
                (0, os.devnull, os.O_RDONLY),
                (1, request["stdout"], os.O_WRONLY | os.O_TRUNC),
                (2, request["stderr"], os.O_WRONLY | os.O_TRUNC),
            ):
                opened = os.open(path, flags)
                os.dup2(opened, fd)
                os.close(opened)
            sys.argv = [airstep_cli.main.__file__, *request["args"]]
            sys.modules["__main__"].__package__ = "airstep_cli"  # usage names `python -m airstep_cli.main`
            airstep_cli.main.main()  # ends the process itself (os._exit) unless an exception escapes it
        except KeyboardInterrupt:  # as Python ends on one: killed by SIGINT
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
    sys.stdout.flush()
"""


class _Zygote:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._env: dict[str, str] = {}

    def run(self, args: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "airstep_cli.main", *args]
        with self._lock:
            process = self._started()
            if process is None or _compared(os.environ) != self._env:
                return subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
            if not Path(cwd).is_dir():  # (as subprocess.run raises)
                raise FileNotFoundError(f"no such directory: {cwd!r}")
            with tempfile.TemporaryDirectory(prefix="airstep-cli-") as streams:
                out, err = Path(streams, "stdout"), Path(streams, "stderr")
                out.touch()
                err.touch()
                request = {"args": args, "cwd": cwd, "env": dict(os.environ), "stdout": str(out), "stderr": str(err)}
                assert process.stdin is not None and process.stdout is not None
                try:
                    process.stdin.write(json.dumps(request) + "\n")
                    process.stdin.flush()
                    reply = process.stdout.readline()
                except BaseException:  # interrupted while the child ran: its reply would answer the next call
                    self._stop(kill=True)
                    raise
                if not reply:
                    raise RuntimeError(f"the CLI zygote died (exit {process.wait()})")
                returncode = json.loads(reply)["returncode"]
                return subprocess.CompletedProcess(command, returncode, out.read_text(), err.read_text())

    def _started(self) -> subprocess.Popen[str] | None:
        if self._process is None:
            self._env = _compared(os.environ)
            self._process = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            assert self._process.stdout is not None
            if self._process.stdout.readline() != "ready\n":
                self._process.kill()
                self._process.wait()
            atexit.register(self._stop)
        return self._process if self._process.poll() is None else None

    def _stop(self, kill: bool = False) -> None:
        """End the zygote (killed: its process group, the child it may be waiting for with it); the
        next call starts another."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            assert process.stdin is not None
            process.stdin.close()
        process.wait(timeout=10)


def _compared(environ: os._Environ[str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k != "PYTEST_CURRENT_TEST"}  # (pytest's, per test)


_ZYGOTE = _Zygote()


def run_cli(*args: str, cwd: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `airstep ARGS` in `cwd` as its own process; its exit code and output, as subprocess.run's."""
    return _ZYGOTE.run([str(a) for a in args], str(cwd))
