"""Tries on the ECS executor, locally: each runs `python -m airstep.runtime.container` (the real
container entry point) in a child process, as ECS runs it in a Fargate task.

The child's AWS calls reach this process's moto through a bridge: the child sends each request
botocore prepared (method, URL, headers, body) to a small HTTP server here, which answers it as moto
answers a request made in this process (`botocore_stubber`), so the child reads and writes the same
buckets, secrets and queues as the run. The child holds nothing else of this process: no client, no
handler, no credentials but moto's fake ones.

    python -m airstep_local.containers   (the child: installs the bridge, then runs the container)
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

from airstep.containers import TRY_REQUEST_ENV, ContainerTarget
from airstep_local.recorded_calls import AwsCall, record

LOCAL_TARGET = ContainerTarget("airstep-local", "airstep-local-runner", ("subnet-local",))
BRIDGE_ENV = "AIRSTEP_LOCAL_AWS_BRIDGE"  # the bridge's URL, in the child
LOGS_ENV = "AIRSTEP_LOCAL_TASK_LOGS"  # where the child writes its tries' logs (the engine's folder)
_CREDENTIALS = ("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")
CONTAINER_FUNCTION = "container-tries"  # whose calls a container's are (AwsCall.function): its task role's


class _Answer(BaseHTTPRequestHandler):
    """One bridged request: the child's prepared request in, moto's answer out (both JSON)."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        from botocore.awsrequest import AWSPreparedRequest
        from moto.core.models import botocore_stubber

        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = AWSPreparedRequest(
            method=sent["method"],
            url=sent["url"],
            headers=sent["headers"],
            body=base64.b64decode(sent["body"]),
            stream_output=False,
        )
        answered = botocore_stubber.process_request(request)
        if answered is None:
            status, headers, body = 501, {}, f"moto has no answer for {sent['url']}".encode()
        else:
            status, headers, body = answered
        _record(sent.get("call"), status)
        body = body.encode() if isinstance(body, str) else bytes(body or b"")
        headers = {str(k): str(v) for k, v in dict(headers).items()}
        reply = json.dumps({"status": status, "headers": headers, "body": base64.b64encode(body).decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return


def _record(call: dict[str, Any] | None, status: int) -> None:
    """A child's call, among the session's recorded calls (the IAM tests judge it by the task role)."""
    if call is not None:
        error = f"HTTP {status}" if status >= 400 else None
        record(AwsCall(CONTAINER_FUNCTION, call["service"], call["operation"], call["params"], error))


class ContainerRuns:
    """The container tries started in this process (by the ECS stand-in), each a child process."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._server: ThreadingHTTPServer | None = None
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._scratch: list[str] = []
        self._lock = threading.Lock()

    def start(self, task_arn: str, environment: dict[str, str]) -> None:
        """Start the container of a try: the child runs with this process's environment and `environment`."""
        with self._lock:
            if self._server is None:
                self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
                threading.Thread(target=self._server.serve_forever, daemon=True, name="aws-bridge").start()
            url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        scratch = tempfile.mkdtemp(prefix="airstep-container-")  # a fresh task's disk: no bundle cached yet
        self._scratch.append(scratch)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(_CREDENTIALS)}
        child_env = {
            **inherited,
            **environment,
            BRIDGE_ENV: url,
            LOGS_ENV: str(self.logs_dir),
            "TMPDIR": scratch,
            "AWS_ACCESS_KEY_ID": "testing",  # moto's (this process's own credentials stay here)
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        child = subprocess.Popen(  # its own process group: stopping it stops what the task started too
            [sys.executable, "-m", "airstep_local.containers"], env=child_env, start_new_session=True
        )
        with self._lock:
            self._children[task_arn] = child

    def exit_code(self, task_arn: str) -> int | None:
        """The child's exit code, or None while it runs (stopped with the engine: killed)."""
        child = self._children.get(task_arn)
        return child.poll() if child is not None else -signal.SIGKILL

    def stop(self) -> None:
        """Stop every child still running (Step Functions stops a run's ECS tasks when it ends) and the bridge."""
        with self._lock:
            for child in self._children.values():
                if child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            self._children.clear()
            for scratch in self._scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            self._scratch.clear()
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None


class _Raw(BytesIO):
    def stream(self, **kwargs: Any) -> Any:  # botocore reads a streamed body this way
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


_noted = threading.local()  # the API call being made on this thread (its request follows)


def _note(params: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore's provide-client-params: which call the next request on this thread makes."""
    _noted.call = {"service": model.service_model.service_name, "operation": model.name, "params": params}


def _bridged(request: Any, **kwargs: Any) -> Any:
    """botocore's before-send: the request answered by the parent's moto, through the bridge."""
    from botocore.awsrequest import AWSResponse

    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    body = body.encode() if isinstance(body, str) else bytes(body or b"")
    sent = json.dumps(
        {
            "method": request.method,
            "url": request.url,
            "headers": {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()},
            "body": base64.b64encode(body).decode(),
            "call": getattr(_noted, "call", None),
        },
        default=str,
    ).encode()
    posted = urllib.request.Request(os.environ[BRIDGE_ENV], data=sent, method="POST")
    with urllib.request.urlopen(posted, timeout=300) as response:  # noqa: S310 - the parent, on localhost
        answer = json.loads(response.read())
    return AWSResponse(request.url, answer["status"], answer["headers"], _Raw(base64.b64decode(answer["body"])))


def _child() -> None:
    """The child: every boto3 call goes through the bridge, tries' logs to the engine's folder; then
    the container entry point, as the Fargate task runs it."""
    from botocore.handlers import BUILTIN_HANDLERS

    from airstep.runtime import task_logs

    BUILTIN_HANDLERS.append(("provide-client-params.*.*", _note))
    BUILTIN_HANDLERS.append(("before-send", _bridged))
    task_logs.configure(task_logs.FileSink(Path(os.environ[LOGS_ENV])))
    assert os.environ.get(TRY_REQUEST_ENV)
    runpy.run_module("airstep.runtime.container", run_name="__main__")


if __name__ == "__main__":
    _child()
