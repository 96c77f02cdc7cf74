"""`Param`: a DAG or task parameter with a default and a JSON schema, validated as Airflow 3.3 does.

Airflow validates a run's params when it creates the run: the DAG's params, overridden by the run's
`conf` (keys of conf that are not params become params), each resolved against its schema with the
`jsonschema` package; the first invalid one refuses the run with "Invalid input for param <name>:
<reason>". airstep does the same before any run starts - locally, in `airstep trigger`, and for
scheduled runs when the DAG is deployed (their conf is always empty) - from the graph model, which
keeps each param's default and schema (never user code).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airstep.errors import DagDefinitionError, ParamValidationError, SourceLocation


class ArgNotSet:
    """The type of NOTSET: an argument not given, where None is a value (Airflow has one such sentinel)."""

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = ArgNotSet()


def is_arg_set(value: Any) -> bool:
    return value is not NOTSET


# The `format`s Airflow 3.3's own installation checks (jsonschema's FormatChecker with the packages
# apache-airflow pulls in), less `duration` and `idn-hostname`, which need packages airstep does not
# ship (isoduration, idna). `date-time` is not among them: Airflow does not check it either.
CHECKED_FORMATS = ("date", "email", "idn-email", "ipv4", "ipv6", "regex", "time", "uuid")


class Param:
    """A parameter's default value and its JSON schema: the keyword arguments other than `default`,
    `description` and `source` (or `schema=` itself)."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, source: str | None = None, **kwargs: Any):
        if default is not NOTSET:
            _check_json(default)
        self.value = default
        self.description = description
        self.source = source
        self.schema: dict[str, Any] = kwargs.pop("schema") if "schema" in kwargs else kwargs

    def __repr__(self) -> str:
        return f"Param({self.value!r}, schema={self.schema!r})"

    @property
    def has_value(self) -> bool:
        return self.value is not NOTSET and self.value is not None

    def resolve(self, value: Any = NOTSET, suppress_exception: bool = False) -> Any:
        """The final value (`value`, else the default), validated against the schema."""
        if value is not NOTSET:
            _check_json(value)
        final = self.value if value is NOTSET else value
        try:
            return validated(final, self.schema)
        except ParamValidationError:
            if suppress_exception:
                return None
            raise


def validated(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` if it satisfies `schema` (NOTSET: no value), else ParamValidationError saying why.
    As Airflow's jsonschema.validate, except that a `$ref` is never fetched (no URL, no file: the
    schema comes from a DAG file) - it must point inside the schema."""
    if value is NOTSET:
        raise ParamValidationError("No value passed", rule="required")
    if not schema:
        return value
    from jsonschema import FormatChecker, SchemaError, ValidationError
    from jsonschema.validators import validator_for
    from referencing import Registry
    from referencing.exceptions import Unresolvable

    checker = validator_for(schema)
    try:
        checker.check_schema(schema)
        checker(schema, registry=Registry(), format_checker=FormatChecker(CHECKED_FORMATS)).validate(value)
    except SchemaError as err:
        raise ParamValidationError(f"its schema is not valid JSON Schema: {err.message}") from None
    except ValidationError as err:
        raise ParamValidationError(err.message, rule=str(err.validator)) from None
    except Unresolvable as err:
        raise ParamValidationError(f"its schema refers to {err} (airstep does not fetch schemas)") from None
    return value


def _check_json(value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ParamValidationError(
            f"All provided parameters must be json-serializable. The value '{value}' is not serializable."
        ) from None


def split_params(params: Any, location: SourceLocation) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A DAG's or task's `params=`: the default values (a Param without one has none) and every
    param's schema (a plain value's is empty), by name, in order. A value that is not JSON is a
    DagDefinitionError naming the param."""
    if params is None:
        return {}, {}
    if not isinstance(params, Mapping):
        raise DagDefinitionError(f"params must be a dict, got {type(params).__name__}", location)
    values: dict[str, Any] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for name, given in params.items():
        schema = given.schema if isinstance(given, Param) else {}
        value = given.value if isinstance(given, Param) else given
        try:  # as JSON holds them (keys become strings), which is how Airflow stores them too
            schemas[name] = json.loads(json.dumps(schema, allow_nan=False))
            if value is not NOTSET:
                values[name] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise DagDefinitionError(
                f"param {name!r} is not JSON-serialisable ({type(value).__name__}): {exc}", location
            ) from None
    return values, schemas


def resolve_params(
    values: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]], conf: Mapping[str, Any]
) -> dict[str, Any]:
    """The run's params, as Airflow resolves them when it creates the run: the defaults overridden by
    `conf`, each validated against its schema in order; ParamValidationError names the first bad one."""
    names = list(dict.fromkeys([*schemas, *values, *conf]))
    resolved: dict[str, Any] = {}
    for name in names:
        value = conf[name] if name in conf else values.get(name, NOTSET)
        try:
            resolved[name] = validated(value, schemas.get(name, {}))
        except ParamValidationError as exc:
            raise ParamValidationError(f"Invalid input for param {name}: {exc}", name, exc.rule) from None
    return resolved
