"""Jinja templates in task fields, rendered as Airflow 3.3 renders them, just before a try runs.

Each operator names its `template_fields` (BashOperator: `bash_command`, `env`, `cwd`; PythonOperator
and @task: `templates_dict`, `op_args`, `op_kwargs`; a custom operator: whatever it declares). A
string is a template; one ending in a `template_ext` (`.sh`, `.sql`, ...) is a file found in the DAG's
folder or `template_searchpath`; lists, tuples, dicts and sets are rendered item by item; an upstream
reference (XComArg) is replaced by its value, which is not rendered again. Airflow's environment:
sandboxed, undefined names are errors, the `do` extension, its date filters, the DAG's
`user_defined_macros` and `user_defined_filters`, and native Python results with
`render_template_as_native_obj=True`. The task is rendered on a copy: the loaded DAG is reused by
later tries and stays as the file wrote it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from datetime import date, time
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.nativetypes
import jinja2.sandbox

if TYPE_CHECKING:
    from airstep.sdk.baseoperator import BaseOperator
    from airstep.sdk.dag import DAG

Moment = date | time | None


def _ds(value: Moment) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d")


def _ds_nodash(value: Moment) -> str | None:
    return None if value is None else value.strftime("%Y%m%d")


def _ts(value: Moment) -> str | None:
    return None if value is None else value.isoformat()


def _ts_nodash(value: Moment) -> str | None:
    return None if value is None else value.strftime("%Y%m%dT%H%M%S")


def _ts_nodash_with_tz(value: Moment) -> str | None:
    return None if value is None else value.isoformat().replace("-", "").replace(":", "")


FILTERS = {
    "ds": _ds,
    "ds_nodash": _ds_nodash,
    "ts": _ts,
    "ts_nodash": _ts_nodash,
    "ts_nodash_with_tz": _ts_nodash_with_tz,
}


class _AirflowEnvironment:
    """What Airflow adds to Jinja's environments: its filters, and `_private` attributes readable."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters.update(FILTERS)  # type: ignore[attr-defined]

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not jinja2.sandbox.is_internal_attribute(obj, attr)


class SandboxedEnvironment(_AirflowEnvironment, jinja2.sandbox.SandboxedEnvironment):
    """Renders templates to strings (Airflow's default)."""


class NativeEnvironment(_AirflowEnvironment, jinja2.nativetypes.NativeEnvironment):
    """Renders templates to Python objects (`render_template_as_native_obj=True`)."""


def template_env(dag: DAG) -> jinja2.Environment:
    """The DAG's Jinja environment, as Airflow's `DAG.get_template_env()` builds it."""
    searchpath = [dag.folder, *dag.template_searchpath]
    options: dict[str, Any] = {
        "undefined": jinja2.StrictUndefined,
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
        "loader": jinja2.FileSystemLoader(searchpath),
    }
    env_class = NativeEnvironment if dag.render_template_as_native_obj else SandboxedEnvironment
    env = env_class(**options)
    env.globals.update(dag.user_defined_macros)
    env.filters.update(dag.user_defined_filters)
    return env


def render_task(task: BaseOperator, context: dict[str, Any]) -> BaseOperator:
    """A copy of `task` with its template fields rendered in `context`."""
    values = _template_values(task, task.template_fields)
    if not values:
        return task
    return _rendered_copy(task, values, context, template_env(task.dag), tuple(task.template_ext))


def _template_values(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The fields of `obj` to render: Airflow skips empty ones."""
    return {name: value for name in fields if (value := getattr(obj, name, None))}


def _rendered_copy(
    obj: Any, values: dict[str, Any], context: dict[str, Any], env: jinja2.Environment, extensions: tuple[str, ...]
) -> Any:
    rendered = copy.copy(obj)
    for name, value in values.items():
        setattr(rendered, name, render(value, context, env, extensions))
    return rendered


class Pulled:
    """A value pulled from an upstream task's XCom, set as a mapped instance's argument: data, which
    rendering hands over as it is (as Airflow never renders an XCom's content)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def resolve(self, context: dict[str, Any]) -> Any:
        return self.value


def render(value: Any, context: dict[str, Any], env: jinja2.Environment, extensions: tuple[str, ...] = ()) -> Any:
    """`value` rendered: strings as templates (or template files), collections item by item,
    upstream references resolved; anything else as it is."""
    if isinstance(value, str):
        template = env.get_template(value) if extensions and value.endswith(extensions) else env.from_string(value)
        return template.render(context)
    resolve = getattr(value, "resolve", None)
    if callable(resolve) and not isinstance(value, (type, os.PathLike)):
        return resolve(context)
    if value.__class__ is tuple:
        return tuple(render(item, context, env, extensions) for item in value)
    if isinstance(value, list):
        return [render(item, context, env, extensions) for item in value]
    if isinstance(value, dict):
        return {key: render(item, context, env, extensions) for key, item in value.items()}
    if isinstance(value, set):
        return {render(item, context, env, extensions) for item in value}
    nested = getattr(value, "template_fields", None)
    if isinstance(nested, (tuple, list)) and not isinstance(value, type):
        # Airflow renders the template_fields of an object held in a template field (a copy here,
        # so that the DAG's objects stay as they were defined)
        return _rendered_copy(value, _template_values(value, nested), context, env, extensions)
    return value
