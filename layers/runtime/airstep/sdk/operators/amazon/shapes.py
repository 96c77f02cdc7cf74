"""boto3's request values as Step Functions' integrations take them: a structure's member names
with their first letter upper-case (`containerOverrides` -> `ContainerOverrides`), as the API's
shapes (botocore's service models) say where structures are; a map's keys are the caller's
(Spark settings, Kubernetes labels and resource names, tags) and stay as written."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any


@functools.cache
def _input_shape(service: str, operation: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape


def step_functions_case(value: Any, shape: Any) -> Any:
    """`value` of botocore shape `shape` with Step Functions' key case."""
    if isinstance(value, Mapping) and (shape is None or shape.type_name == "structure"):
        members = {name.lower(): (name, member) for name, member in (shape.members.items() if shape else ())}
        converted = {}
        for key, item in value.items():
            name, member = members.get(str(key).lower(), (str(key), None))
            converted[name[:1].upper() + name[1:]] = step_functions_case(item, member)
        return converted
    if isinstance(value, Mapping) and shape.type_name == "map":
        return {key: step_functions_case(item, shape.value) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [
            step_functions_case(item, shape.member if shape is not None and shape.type_name == "list" else None)
            for item in value
        ]
    return value


def request_member(service: str, operation: str, member: str | None = None) -> Callable[[Any], Any]:
    """A Field's conversion for the request member `member` of `operation` (None: the whole request,
    a dict of several members)."""

    def convert(value: Any) -> Any:
        if not isinstance(value, (Mapping, list, tuple)):
            raise TypeError(f"expected a dict or a list, got {type(value).__name__}")
        shape = _input_shape(service, operation)
        return step_functions_case(value, shape if member is None else shape.members.get(member))

    return convert
