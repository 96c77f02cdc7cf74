"""Plumbing that makes moto behave as the cloud does for airstep: Lambda calls reach our handler.

moto's Step Functions interpreter invokes Lambda through a boto3 client it builds per call from the
default session. We install a default session that (1) reuses clients, since building one costs
milliseconds per task, (2) answers `lambda:Invoke` in-process from the real task-runner handler,
and (3) serialises DynamoDB calls, because moto's in-memory table is not atomic across threads
where DynamoDB is. `speed_up_moto` makes moto faster without changing any result: one parse per
definition, per JSONPath and per update expression, DynamoDB items serialised as stored, S3's URL
module loaded once, and the interpreter imported without moto's EC2 backend (a second per run);
with them, the one fix moto needs to answer as AWS does (a task failure keeps its cause).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import re
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

from airstep_local.faults import Faults, client_error
from airstep_local.recorded_calls import AwsCall, current_function, execution_role
from airstep_local.sync_integrations import run_sync_integrations

Handler = Callable[[dict[str, Any], Any], Any]
# Told of every invocation: (function name, event, result or None, error type or None, finished).
Listener = Callable[[str, dict[str, Any], Any, str | None, bool], None]


class FakeLambdaContext:
    """The attributes of a Lambda context object that Powertools and handlers read."""

    def __init__(self, function_name: str, memory_mb: int = 1024) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


class BackendHistories:
    """A Step Functions client whose GetExecutionHistory reads moto's interpreter directly, in pages as
    AWS gives them: through the API, serialising a run's hundreds of events costs a second; the
    events themselves are the same. Every other call goes to `client`."""

    def __init__(self, client: Any, account: str, region: str) -> None:
        self._client = client
        self._account, self._region = account, region

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_execution_history(
        self,
        executionArn: str,
        maxResults: int = 1000,
        nextToken: str | None = None,
        **_: Any,  # noqa: N803
    ) -> dict[str, Any]:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        events = stepfunctions_parser_backends[self._account][self._region].get_execution_history(executionArn)
        start = int(nextToken or 0)
        page: dict[str, Any] = {"events": list(events["events"][start : start + maxResults])}
        if start + maxResults < len(events["events"]):
            page["nextToken"] = str(start + maxResults)
        return page


class _SerializedClient:
    """A boto3 DynamoDB client whose calls run one at a time (and may be made to fail: `Faults`)."""

    _lock = threading.RLock()

    def __init__(self, client: Any, session: LocalSession) -> None:
        self._client = client
        self._session = session

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            faults = self._session.faults
            if faults is not None:
                faults.before_dynamodb(name, kwargs)
            with self._lock:
                return attr(*args, **kwargs)

        return call


class LocalSession(boto3.Session):
    """Default session for local runs: cached clients, in-process Lambda, serialised DynamoDB. With
    `calls` set to a list, every AWS call is recorded there (the IAM tests hold them against
    template.yaml's policies)."""

    def __init__(self, handlers: dict[str, Handler], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers = handlers
        self.listener: Listener | None = None
        self.faults: Faults | None = None
        self.calls: list[AwsCall] | None = None
        self.memory_mb: dict[str, int] = {}  # the functions' memory, as template.yaml configures it
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.events.register_first("before-call.lambda.Invoke", self._invoke)
        self.events.register("provide-client-params.*.*", self._record_call)
        self.events.register("after-call.*.*", self._record_outcome)

    def _record_call(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.calls is not None:
            service, operation = model.service_model.service_name, model.name
            call = AwsCall(current_function.get(), service, operation, dict(params), role=execution_role.get())
            context["airstep_call"] = call
            self.calls.append(call)

    def _record_outcome(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get("airstep_call")
        if call is not None:
            error = parsed.get("Error")  # (a Data API statement's answer has an Error of its own: its text)
            call.error = error.get("Code") if isinstance(error, dict) else None
            call.response = parsed

    def handler(self, function_name: str) -> Handler:
        """The function's handler; "<function>-<queue>" is another executor, with <function>'s handler."""
        for name in (function_name, function_name.rsplit("-", 1)[0]):
            if name in self._handlers:
                return self._handlers[name]
        raise LookupError(f"no local handler for Lambda function {function_name!r}")

    def context(self, function_name: str) -> FakeLambdaContext:
        """A context for an invocation of the function, with its memory (`memory_mb`; else 1,024 MB)."""
        return FakeLambdaContext(function_name, self.memory_mb.get(function_name, 1024))

    def invoke_locally(self, function_name: str, event: dict[str, Any]) -> Any:
        """Run a function's handler as its service would (EventBridge, S3): not through the Lambda API."""
        entered = current_function.set(function_name)
        try:
            return self.handler(function_name)(event, self.context(function_name))
        finally:
            current_function.reset(entered)

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        config = kwargs.get("config")
        options = getattr(config, "_user_provided_options", None)
        key = repr((service_name, args, sorted((k, repr(v)) for k, v in kwargs.items() if k != "config"), options))
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                client = super().client(service_name, *args, **kwargs)
                if service_name == "dynamodb":
                    client = _SerializedClient(client, self)
                self._clients[key] = client
        return client

    def _invoke(self, params: dict[str, Any], model: Any = None, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        function = unquote(params["url_path"].split("/functions/")[1].split("/")[0])
        function_name = function.split(":function:")[-1].split(":")[0]
        try:
            handler = self.handler(function_name)
        except LookupError:  # as Lambda answers for a function that does not exist
            return _not_found(function_name)
        event = json.loads(params["body"] or b"{}")
        fault = self.faults.before_invoke(function_name, event) if self.faults else None
        if fault:  # refused by the Lambda service: the function never runs
            error = client_error(fault, "Invoke").response
            return AWSResponse("https://lambda.local", error["ResponseMetadata"]["HTTPStatusCode"], {}, None), error
        invocation = (params.get("headers") or {}).get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation == "DryRun":  # Lambda checks the request and runs nothing
            return _answered(204, b"")
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        listener = self.listener
        if listener is not None:
            listener(function_name, event, None, None, False)
        entered = current_function.set(function_name)
        try:
            if self.faults is not None and self.faults.duplicated(function_name, event):
                try:  # an earlier delivery of the same event, whose answer nobody hears
                    handler(event, self.context(function_name))
                except Exception:  # noqa: BLE001, S110 - its caller never sees it either
                    pass
            result = handler(event, self.context(function_name))
            body = json.dumps(result).encode()
            if listener is not None:
                listener(function_name, event, result, None, True)
        except Exception as exc:  # noqa: BLE001 - reported the way Lambda reports an unhandled error
            if listener is not None:
                listener(function_name, event, None, type(exc).__name__, True)
            body = json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
                }
            ).encode()
            parsed["FunctionError"] = "Unhandled"
        finally:
            current_function.reset(entered)
        if invocation == "Event":  # queued by Lambda (run here before answering): its caller hears nothing of it
            return _answered(202, b"")
        parsed["Payload"] = StreamingBody(io.BytesIO(body), len(body))
        return AWSResponse("https://lambda.local", 200, {}, None), parsed


def _answered(status: int, body: bytes) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {"StatusCode": status, "Payload": StreamingBody(io.BytesIO(body), len(body))}
    return AWSResponse("https://lambda.local", status, {}, None), parsed


def _not_found(function_name: str) -> tuple[AWSResponse, dict[str, Any]]:
    message = (
        f"Function not found: {function_name} (a local run calls a Lambda function of yours only when "
        f"`airstep run --lambda {function_name}=FILE.py:FUNCTION` gives its handler)"
    )
    error = {
        "Error": {"Code": "ResourceNotFoundException", "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": "local"},
    }
    return AWSResponse("https://lambda.local", 404, {}, None), error


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


def cache_parsing() -> Callable[[], None]:
    """Parse each distinct expression once. moto re-parses every JSONPath (`"ctx.$": "$"`, ...) each
    time a state uses it (0.7 ms each), and every DynamoDB update expression twice per call. Parsed
    paths are immutable, and moto deep-copies an update expression's tree before evaluating it, so
    sharing the parse is safe. Returns a function that undoes both."""
    import functools

    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.stepfunctions.parser.asl.utils import json_path

    original_path = json_path.parse
    original_update = UpdateExpressionParser.__dict__["make"]
    json_path.parse = functools.lru_cache(maxsize=4096)(original_path)  # type: ignore[assignment]
    UpdateExpressionParser.make = functools.lru_cache(maxsize=256)(UpdateExpressionParser.make)  # type: ignore[method-assign]

    def restore() -> None:
        json_path.parse = original_path  # type: ignore[assignment]
        UpdateExpressionParser.make = original_update  # type: ignore[method-assign]

    return restore


_PLAIN_TAGS = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})


def _is_plain_attribute_value(value: Any) -> bool:
    """A DynamoDB attribute value already in wire form with nothing to encode (no binary)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((tag, inner),) = value.items()
    if tag in _PLAIN_TAGS:
        return True
    if tag == "M":
        return isinstance(inner, dict) and all(_is_plain_attribute_value(v) for v in inner.values())
    if tag == "L":
        return isinstance(inner, list) and all(_is_plain_attribute_value(v) for v in inner)
    return False


def pass_through_attribute_values() -> Callable[[], None]:
    """moto keeps DynamoDB items in wire form, then serialises every attribute value member by member
    through its generic model walker (about 0.2 ms per attribute: a 100-task run's listing costs
    80 ms). A value with nothing to encode is written as it is, exactly as the walker would write it;
    binary values still take the walker. Returns a function that undoes it."""
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer.__dict__["_serialize_type_structure"]

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _is_plain_attribute_value(value):
            serialized[key] = value
            return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]

    def restore() -> None:
        BaseJSONSerializer._serialize_type_structure = original  # type: ignore[method-assign]

    return restore


def load_s3_urls_once() -> Callable[[], None]:
    """moto reloads its S3 URL module on every S3 request (the URLs may depend on environment
    variables that the local engine never changes). Besides the time, the reload looks the module up
    on disk again while other threads do the same: on a fresh virtualenv, whose `__pycache__` folders
    are still being written, that lookup once failed with "spec not found for the module
    'moto.s3.urls'". Load it once. Returns a function that undoes the patch."""
    import moto.s3.urls
    from moto.s3.models import S3Backend

    original = S3Backend.__dict__["_url_module"]
    S3Backend._url_module = property(lambda self: moto.s3.urls)  # type: ignore[assignment,method-assign]

    def restore() -> None:
        S3Backend._url_module = original  # type: ignore[method-assign]

    return restore


def list_handler_methods_once() -> Callable[[], None]:
    """moto lists a response class's methods (`inspect.getmembers`) on every request to find the
    action's handler; a class's methods never change while the engine runs. Returns a function that
    undoes the patch."""
    import functools

    from moto.core import responses

    original = responses.method_names_from_class
    responses.method_names_from_class = functools.lru_cache(maxsize=256)(original)  # type: ignore[assignment]

    def restore() -> None:
        responses.method_names_from_class = original  # type: ignore[assignment]

    return restore


def keep_task_failure_cause() -> Callable[[], None]:
    """moto's SendTaskFailure drops the `cause` (AWS hands it to the Catch as `Cause`): a pooled
    task whose pool went away while it waited would be recorded without the reason. Returns a
    function that undoes the patch."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.send_task_failure

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]

    def restore() -> None:
        StepFunctionResponse.send_task_failure = original  # type: ignore[method-assign]

    return restore


def pass_lambda_invocation_type() -> Callable[[], None]:
    """moto's interpreter drops `InvocationType` from a `lambda:invoke` state's Parameters (AWS takes
    it: an `Event` invocation answers 202 and an empty payload, a `DryRun` runs nothing). Returns a
    function that undoes the patch."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_lambda

    accepted = state_task_service_lambda._SUPPORTED_API_PARAM_BINDINGS["invoke"]
    added = "InvocationType" not in accepted
    accepted.add("InvocationType")

    def restore() -> None:
        if added:
            accepted.discard("InvocationType")

    return restore


def call_aws_services_as_aws_does() -> Callable[[], None]:
    """Three moto gaps: its `glue:startJobRun.sync` ends every run in an AttributeError (its wait
    releases the task-token endpoint of the state, which moto makes only for services that take a
    task token: Glue is given one, and waits as moto's other `.sync` integrations do); its `aws-sdk`
    integration names Glue's, S3's, Redshift Data's, Athena's and EMR Serverless's errors `glue.X`,
    `s3.X`, `redshiftdata.X`... where AWS names them `Glue.X`, `S3.X`, `RedshiftData.X`... (a Catch
    on `Glue.CrawlerRunningException` would never match); and it knows `aws-sdk:redshiftdata` and
    `aws-sdk:emrserverless` by no client (boto3 names them `redshift-data`, `emr-serverless`).
    Returns a function that undoes the patch."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
        state_task_service_glue,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    patterns = state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS
    added = ResourceCondition.WaitForTaskToken not in patterns
    patterns.add(ResourceCondition.WaitForTaskToken)
    names = state_task_service_aws_sdk._SERVICE_ERROR_NAMES
    pairs = (
        ("glue", "Glue"),
        ("s3", "S3"),
        ("redshiftdata", "RedshiftData"),
        ("athena", "Athena"),
        ("emrserverless", "EmrServerless"),
    )
    named = {service: name for service, name in pairs if service not in names}
    names.update(named)
    clients = StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES  # (Step Functions' name -> boto3's)
    mapped = {"redshiftdata": "redshift-data", "emrserverless": "emr-serverless"}
    clients.update(mapped)  # type: ignore[attr-defined]

    def restore() -> None:
        if added:
            patterns.discard(ResourceCondition.WaitForTaskToken)
        for service in named:
            names.pop(service, None)
        for service in mapped:
            clients.pop(service, None)  # type: ignore[attr-defined]

    return restore


def record_execution_roles() -> Callable[[], None]:
    """A Task state's calls are made with its execution's role in AWS: each call moto's interpreter
    makes for one knows that role (`execution_role`), so that the IAM tests judge it by that role's
    policies. Returns a function that undoes the patch."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    original = StateTaskService._eval_execution

    def eval_execution(self: Any, env: Any) -> None:
        role = env.states.context_object.context_object_data.get("Execution", {}).get("RoleArn")
        token = execution_role.set(role)
        try:
            original(self, env)
        finally:
            execution_role.reset(token)

    StateTaskService._eval_execution = eval_execution  # type: ignore[method-assign]

    def restore() -> None:
        StateTaskService._eval_execution = original  # type: ignore[method-assign]

    return restore


def index_paths_as_aws_does() -> Callable[[], None]:
    """moto reads `$.Contents[0].Key` as a list of one (its reading of a path below an index, meant
    for filters, `[?(...)]`); AWS reads a path whose brackets are all literal indexes as the one
    value it names (a Choice's StringEquals on it would never match). Returns a function that undoes
    the patch."""
    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path._is_singleton_array_access

    def definite(path: str) -> bool:
        brackets = re.findall(r"\[([^\]]*)\]", path)
        return original(path) or (bool(brackets) and all(b.strip().isdigit() for b in brackets))

    json_path._is_singleton_array_access = definite  # type: ignore[assignment]

    def restore() -> None:
        json_path._is_singleton_array_access = original

    return restore


def _pascal(response: dict[str, Any]) -> dict[str, Any]:
    """An AWS API response's keys as Step Functions' integrations name them (`executionArn` ->
    `ExecutionArn`), dates as ISO text."""
    return {
        key[:1].upper() + key[1:]: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in response.items()
    }


def call_step_functions_as_aws_does() -> Callable[[], None]:
    """moto's `states:startExecution` integration hands the state's PascalCase Parameters to boto3
    as they are (a KeyError: the API's names are camelCase) and its responses back camelCase (AWS's
    integration answers `ExecutionArn`, `Status`, ...; `.sync` reads `ExecutionArn`). Returns a
    function that undoes the patch."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    originals = {name: StateTaskServiceSfn.__dict__.get(name) for name in ("_eval_service_task", "_normalise_response")}

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        client = boto_client_for(
            region=resource_runtime_part.region, service="stepfunctions", state_credentials=state_credentials
        )
        request = {key[:1].lower() + key[1:]: value for key, value in normalised_parameters.items()}
        action = self._get_boto_service_action()
        if action == "start_execution":  # AWS names an execution started without a name (moto: "None")
            request.setdefault("name", str(uuid.uuid4()))
        response = getattr(client, action)(**request)
        response.pop("ResponseMetadata", None)
        env.stack.append(_pascal(response))

    def normalise_response(
        self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        if isinstance(response, dict):
            pascal = _pascal(response)
            response.clear()
            response.update(pascal)

    StateTaskServiceSfn._eval_service_task = eval_service_task  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_response = normalise_response  # type: ignore[method-assign]

    def restore() -> None:
        for name, original in originals.items():
            if original is None:  # inherited
                delattr(StateTaskServiceSfn, name)
            else:
                setattr(StateTaskServiceSfn, name, original)

    return restore


def speed_up_moto() -> Callable[[], None]:
    """Apply every speed-up above (none changes a result), and the fixes that make moto answer as
    AWS does; returns a function that undoes them all."""
    import_interpreter()  # first: the patches below import parts of the interpreter
    restores = [
        parse_once_per_execution(),
        cache_parsing(),
        pass_through_attribute_values(),
        load_s3_urls_once(),
        list_handler_methods_once(),
        keep_task_failure_cause(),
        pass_lambda_invocation_type(),
        call_step_functions_as_aws_does(),
        call_aws_services_as_aws_does(),
        index_paths_as_aws_does(),
        record_execution_roles(),
        run_sync_integrations(),
    ]

    def restore() -> None:
        for undo in reversed(restores):
            undo()

    return restore
