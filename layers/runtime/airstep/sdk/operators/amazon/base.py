"""AwsOperator: an amazon-provider operator that runs as a Step Functions service integration.

Its arguments become the Task state's Parameters at compile time. A template field holding a Jinja
template or an upstream output is rendered by the try's prepare step (the executor) at run time
and fills its parameters then; every other parameter is written into the definition. The call runs
with the state machine's role: connection arguments that would choose other credentials, another
region or another endpoint are refused, never ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from airstep.errors import AirflowException, DagDefinitionError
from airstep.integration import Grant, Integration, Poll
from airstep.sdk.baseoperator import BaseOperator
from airstep.sdk.xcom_arg import iter_xcom_args
from airstep.secrets_masker import redact

DEFAULT_CONN_ID = "aws_default"
_JINJA_MARKS = ("{{", "{%", "{#")


@dataclass(frozen=True, slots=True)
class Field:
    """How one of the operator's arguments becomes a Parameter of the call: its name there (`SPREAD`:
    the argument is a dict whose keys are Parameters; a dotted name, `QueryExecutionContext.Database`:
    a key inside a Parameter other arguments fill too), and the conversion of its (rendered) value."""

    parameter: str
    convert: Callable[[Any], Any] = lambda value: value


SPREAD = ""


class AwsOperator(BaseOperator):
    """Base of the amazon provider's operators airstep translates. Subclasses name the Step
    Functions `resource`, how each argument becomes a Parameter (`fields`), the constant Parameters,
    the ResultSelector of what the operator returns, and whether that is pushed as JSON text."""

    resource: ClassVar[str]
    fields: ClassVar[Mapping[str, Field]]
    constants: ClassVar[Mapping[str, Any]] = {}
    returns: ClassVar[tuple[str, ...]] = ()  # the response's keys the operator returns (those it has)
    returns_value: ClassVar[bool] = False  # ... or the value of its one key
    returns_list: ClassVar[bool] = False  # ... as a list (the value itself when it is one)
    returns_payload_text: ClassVar[bool] = False
    pushes: ClassVar[bool] = True  # False: the provider's execute returns None (nothing is pushed)
    errors: ClassVar[str] = ""  # a key of the response that, not empty, fails the try (errors reported in a 200)
    succeeded: ClassVar[tuple[Any, ...]] = ()  # the end states that are a success (see `ended_key`)

    def __init__(
        self,
        *,
        aws_conn_id: str | None = DEFAULT_CONN_ID,
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.call_constants: dict[str, Any] = dict(self.constants)  # an operator's arguments may add some
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        if aws_conn_id not in (None, "", DEFAULT_CONN_ID):
            self.refuse(
                "aws_conn_id",
                f"{aws_conn_id!r}: the call runs with the DAG's own role in its environment's account, "
                "not with a connection's credentials (leave it out, or use 'aws_default')",
            )
        for name, value in (("verify", verify), ("botocore_config", botocore_config)):
            if value is not None:
                self.refuse(name, "the call is made by Step Functions, as AWS configures it")
        if region_name is not None and not isinstance(region_name, str):
            self.refuse("region_name", f"expected a string, got {type(region_name).__name__}")
        if isinstance(region_name, str) and self._holds_template(region_name):
            self.refuse("region_name", "a templated region is not known when the DAG compiles")

    def _built(self) -> None:
        """Once the operator is built, its arguments are checked: what cannot become its call's
        Parameters is an import error at the operator's line, not a failure at run time."""
        super()._built()
        self.integration()

    def container_refusal(self) -> str | None:
        return "it runs as a Step Functions service integration, no task code (no executor) at all"

    @classmethod
    def mapping_refusal(cls) -> str | None:
        return (
            f"a mapped {cls.__name__} is not supported by airstep yet (its call is one Step Functions state): "
            "write one task per item, or map a @task that makes the call"
        )

    def refuse(self, argument: str, why: str) -> None:
        """Raise the import error for an argument airstep does not translate."""
        raise DagDefinitionError(
            f"{type(self).__name__} {self.task_id!r}: {argument} is not translated by airstep: {why}", self.location
        )

    def integration(self) -> Integration:
        """The task as a service integration: the Parameters known now, those rendered at run time."""
        templated = self._with_companions(self.templated_fields())
        ended = self.ended_key()
        parameters = dict(self.call_constants)
        parameters.update(self._parameters([n for n in self.fields if n not in templated], self.refuse))
        return Integration(
            operator=type(self).__name__,
            resource=self.call_resource(),
            parameters=dict(sorted(parameters.items())),
            rendered=tuple(sorted({p for name in templated for p in self._rendered_parameters(name)})),
            returns=self.call_returns(),
            push=self.do_xcom_push and self.pushes,
            as_text=self.returns_payload_text,
            prepare=bool(templated) or bool(self.on_execute_callback),
            region=self.region_name or None,
            returns_value=self.returns_value,
            wait_seconds=self.wait_seconds(),
            poll=self.integration_poll(),
            errors=self.errors,
            ended=ended,
            succeeded=self.succeeded if ended else (),
            also_push=self.also_push(),
            grants=self.grants(),
            returns_list=self.returns_list,
            skip_on=self.skipped_ends() if ended else (),
            reason=self.reason_key() if ended else "",
        )

    def skipped_ends(self) -> tuple[Any, ...]:
        """The end states (see `ended_key`) that skip the task rather than fail it."""
        return ()

    def reason_key(self) -> str:
        """The response's key saying why the work ended as it did."""
        return ""

    def grants(self) -> tuple[Grant, ...]:
        """The IAM actions and resources the task's calls need (the DAG's role allows these and no more)."""
        return ()

    def named(self, value: Any) -> str:
        """A resource name for a grant: the value when the DAG gives it, or its part before the
        first template followed by `*` (what rendering makes of it is known only when the try begins)."""
        if not isinstance(value, str) or any(True for _ in iter_xcom_args(value)):
            return "*"
        marks = [index for mark in _JINJA_MARKS if (index := value.find(mark)) >= 0]
        if self.template_ext and value.endswith(tuple(self.template_ext)):
            marks.append(0)
        return value[: min(marks)] + "*" if marks else value

    def call_resource(self) -> str:
        """The Task state's resource (an operator that may wait, or not, names the pattern here)."""
        return self.resource

    def ended_key(self) -> str:
        """The response's key holding the state the waited-for work ended in ("": none checked)."""
        return ""

    def also_push(self) -> tuple[tuple[str, str], ...]:
        """(XCom key, response key) pairs the operator pushes besides its return value."""
        return ()

    def integration_poll(self) -> Poll | None:
        """The describe calls that wait for the work, for a service without `.sync` (None: none)."""
        return None

    def call_returns(self) -> tuple[str, ...]:
        """The keys of the call's result that the operator returns (they may depend on the pattern)."""
        return self.returns

    def _rendered_parameters(self, name: str) -> list[str]:
        """The Parameters a templated argument fills when rendered: a spread dict's keys must be known now."""
        if self.fields[name].parameter != SPREAD:
            return [_top(self.fields[name].parameter)]
        value = getattr(self, name)
        if not isinstance(value, Mapping):  # (Airflow renders a dict's values, never its keys)
            self.refuse(name, "its keys are Parameters of the call, which must be known when the DAG compiles")
        return [str(key) for key in value]

    def wait_seconds(self) -> float | None:
        """How long the operator waits for the work it started (None: it does not wait)."""
        return None

    def _with_companions(self, names: list[str]) -> list[str]:
        """`names` and the arguments that fill the same Parameters (a Parameter is rendered whole)."""
        tops = {_top(self.fields[name].parameter) for name in names if self.fields[name].parameter != SPREAD}
        return [name for name in self.fields if name in names or _top(self.fields[name].parameter) in tops - {SPREAD}]

    def templated_fields(self) -> list[str]:
        """The arguments the run step gives the call: those rendering can change (see
        `_holds_template`), and those whose JSON has a key ending in `.$`, which Step Functions would
        read as a path if the definition held it."""
        return [
            name for name in self.fields if self._holds_template(getattr(self, name, None)) or self._has_path_key(name)
        ]

    def _has_path_key(self, name: str) -> bool:
        value = getattr(self, name, None)
        if value is None:
            return False
        try:
            converted = self.fields[name].convert(value)
        except (TypeError, ValueError):
            return False
        return _path_keys(converted)

    def rendered_parameters(self, names: list[str]) -> dict[str, Any]:
        """The Parameters of arguments `names`, from this rendered copy's values: the prepare step's
        answer. A value that cannot become its parameter fails the try."""

        def fail(argument: str, why: str) -> None:
            raise AirflowException(f"{argument} rendered to a value the call cannot take: {why}")

        for name in names:
            if getattr(self, name, None) is None:
                fail(name, "None")
        names = self._with_companions(names)
        converted = self._converted(names, fail)
        for name in names:  # as rendered (a conversion may escape a secret) and as converted (or decode one)
            if _holds_secret(getattr(self, name, None)) or _holds_secret(converted.get(name)):
                raise AirflowException(
                    f"{name} of {self.task_id!r} rendered to a secret (a connection's password or a masked "
                    "variable): the call's parameters are kept in Step Functions' execution history, so it is "
                    "refused"
                )
        return self._placed(converted)

    def _parameters(self, names: list[str], refuse: Callable[[str, str], None]) -> dict[str, Any]:
        return self._placed(self._converted(names, refuse))

    def _converted(self, names: list[str], refuse: Callable[[str, str], None]) -> dict[str, Any]:
        """The converted values of the arguments `names` that are not None, by argument name."""
        converted: dict[str, Any] = {}
        for name in names:
            value = getattr(self, name, None)
            if value is None:
                continue
            try:
                converted[name] = self.fields[name].convert(value)
            except (TypeError, ValueError) as exc:
                refuse(name, str(exc))
        return converted

    def _placed(self, converted: dict[str, Any]) -> dict[str, Any]:
        """Converted arguments as the call's Parameters, each where its field puts it (in field order:
        a later argument's key overrides an earlier one's, as the provider merges them)."""
        parameters: dict[str, Any] = {}
        for name, value in converted.items():
            parameter = self.fields[name].parameter
            if parameter == SPREAD:
                parameters.update(value)
                continue
            *outer, key = parameter.split(".")
            inner = parameters
            for part in outer:
                inner[part] = dict(inner.get(part) or {})
                inner = inner[part]
            inner[key] = value
        return parameters

    def _holds_template(self, value: Any) -> bool:
        """Whether rendering can change `value`: a string with Jinja in it (every string when the DAG
        renders native objects) or naming a template file, an upstream output, or a collection holding one."""
        if isinstance(value, str):  # (a string ending in a template_ext names a template file)
            return (
                self.dag.render_template_as_native_obj
                or any(mark in value for mark in _JINJA_MARKS)
                or bool(self.template_ext and value.endswith(tuple(self.template_ext)))
            )
        if any(True for _ in iter_xcom_args(value)) or callable(getattr(value, "resolve", None)):
            return True
        if isinstance(value, Mapping):
            return any(self._holds_template(item) for item in value.values())
        if isinstance(value, (list, tuple, set)):
            return any(self._holds_template(item) for item in value)
        return False

    def execute(self, context: dict[str, Any]) -> Any:
        raise AirflowException(f"{type(self).__name__} runs as a Step Functions service integration, not as task code")


def _top(parameter: str) -> str:
    return parameter.split(".", 1)[0]


def _path_keys(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(str(key).endswith(".$") or _path_keys(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_path_keys(item) for item in value)
    return False


def _holds_secret(value: Any) -> bool:
    """Whether a rendered value (a string, or strings in collections) holds a registered secret."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode(errors="replace")
    if isinstance(value, (int, float)):  # a native render of a masked variable
        value = str(value)
    if isinstance(value, str):
        return redact(value) != value
    if isinstance(value, Mapping):
        return any(_holds_secret(key) or _holds_secret(item) for key, item in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(_holds_secret(item) for item in value)
    return False


def json_value(value: Any) -> Any:
    """JSON text (a str or bytes, as the provider takes a payload) as the JSON value it holds."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if not isinstance(value, str):
        raise TypeError(f"expected JSON text (str or bytes), got {type(value).__name__}")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def whole_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise TypeError(f"expected a whole number, got {value!r}")
    return int(value)
