"""Plumbing that makes moto behave as the cloud does for airstep: Lambda calls reach our handler.

moto's Step Functions interpreter invokes Lambda through a boto3 client it builds per call from the
default session. We install a default session that (1) reuses clients, since building one costs
milliseconds per task, (2) answers `lambda:Invoke` in-process from the real task-runner handler,
and (3) serialises DynamoDB calls, because moto's in-memory table is not atomic across threads
where DynamoDB is. `parse_once_per_execution` spares moto a second parse of each definition and
`cache_jsonpath_parsing` a re-parse of every JSONPath on every state (0.7 ms each), and
`import_interpreter` loads the interpreter without moto's EC2 backend (a second per run).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import sys
import threading
import traceback
import types
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

Handler = Callable[[dict[str, Any], Any], Any]
# Told of every invocation: (event, result or None, error type or None, finished).
Listener = Callable[[dict[str, Any], Any, str | None, bool], None]


class FakeLambdaContext:
    """The attributes of a Lambda context object that Powertools and handlers read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


class _SerializedClient:
    """A boto3 client whose calls run one at a time."""

    _lock = threading.RLock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


class LocalSession(boto3.Session):
    """Default session for local runs: cached clients, in-process Lambda, serialised DynamoDB."""

    def __init__(self, handlers: dict[str, Handler], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers = handlers
        self.listener: Listener | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.events.register_first("before-call.lambda.Invoke", self._invoke)

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        config = kwargs.get("config")
        options = getattr(config, "_user_provided_options", None)
        key = repr((service_name, args, sorted((k, repr(v)) for k, v in kwargs.items() if k != "config"), options))
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                client = super().client(service_name, *args, **kwargs)
                if service_name == "dynamodb":
                    client = _SerializedClient(client)
                self._clients[key] = client
        return client

    def _invoke(self, params: dict[str, Any], model: Any = None, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        function = unquote(params["url_path"].split("/functions/")[1].split("/")[0])
        function_name = function.split(":function:")[-1].split(":")[0]
        handler = self._handlers.get(function_name)
        if handler is None:
            raise LookupError(f"no local handler for Lambda function {function_name!r}")
        event = json.loads(params["body"] or b"{}")
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        listener = self.listener
        if listener is not None:
            listener(event, None, None, False)
        try:
            result = handler(event, FakeLambdaContext(function_name))
            body = json.dumps(result).encode()
            if listener is not None:
                listener(event, result, None, True)
        except Exception as exc:  # noqa: BLE001 - reported the way Lambda reports an unhandled error
            if listener is not None:
                listener(event, None, type(exc).__name__, True)
            body = json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
                }
            ).encode()
            parsed["FunctionError"] = "Unhandled"
        parsed["Payload"] = StreamingBody(io.BytesIO(body), len(body))
        return AWSResponse("https://lambda.local", 200, {}, None), parsed


_INTERPRETER = "moto.stepfunctions.parser.asl.parse.asl_parser"


def import_interpreter() -> None:
    """Import moto's Step Functions interpreter without its AWS Batch integration's import chain.

    The interpreter's Batch task module needs one enum from `moto.batch.utils`, but importing it runs
    `moto/batch/__init__.py`, which loads moto's whole EC2 backend: a second of every `airstep run`
    for an integration airstep never emits. While the interpreter imports, `moto.batch` is an empty
    package on the real path, so `moto.batch.utils` loads alone; a later `import moto.batch` (a Batch
    call) runs the real package. Should moto ever need more of it, the plain import runs instead."""
    spec = importlib.util.find_spec("moto.batch")
    if _INTERPRETER in sys.modules or "moto.batch" in sys.modules or spec is None:
        importlib.import_module(_INTERPRETER)
        return
    package = types.ModuleType("moto.batch")
    package.__path__ = list(spec.submodule_search_locations or [])
    sys.modules["moto.batch"] = package
    try:
        importlib.import_module(_INTERPRETER)
    except ImportError:
        for name in [n for n in sys.modules if n.startswith(("moto.stepfunctions.parser", "moto.batch"))]:
            del sys.modules[name]
        importlib.import_module(_INTERPRETER)
    finally:
        if sys.modules.get("moto.batch") is package:
            del sys.modules["moto.batch"]


def parse_once_per_execution() -> Callable[[], None]:
    """moto parses a definition when the state machine is created (to validate it) and again when an
    execution starts; for large DAGs each parse costs a second. Hand the validation parse to the
    next execution of the same definition, once. Returns a function that undoes the patch."""
    import_interpreter()
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.__dict__["parse"]
    parse = original.__func__
    pending: dict[str, Any] = {}
    lock = threading.Lock()

    def parse_once(definition: str) -> Any:
        with lock:
            if definition in pending:
                return pending.pop(definition)
        result = parse(definition)
        with lock:
            pending[definition] = result
        return result

    AmazonStateLanguageParser.parse = staticmethod(parse_once)  # type: ignore[method-assign,assignment]

    def restore() -> None:
        AmazonStateLanguageParser.parse = original  # type: ignore[method-assign]

    return restore


def cache_jsonpath_parsing() -> Callable[[], None]:
    """moto parses each JSONPath (`"ctx.$": "$"`, `$.item.task_id`, ...) every time a state uses it;
    parsed paths are immutable, so parse each distinct path once. Returns a function that undoes it."""
    import functools

    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.parse
    json_path.parse = functools.lru_cache(maxsize=4096)(original)  # type: ignore[assignment]

    def restore() -> None:
        json_path.parse = original  # type: ignore[assignment]

    return restore
