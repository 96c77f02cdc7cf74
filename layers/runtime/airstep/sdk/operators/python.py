"""PythonOperator: calls a Python function; what it returns becomes the task's XCom."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airstep.errors import DagDefinitionError
from airstep.sdk.baseoperator import BaseOperator
from airstep.sdk.xcom_arg import resolve_xcom_args


class PythonOperator(BaseOperator):
    """Calls `python_callable(*op_args, **op_kwargs)`; the return value becomes its XCom.

    Upstream return values passed as XComArgs (TaskFlow, `operator.output`) are resolved first, and
    the callable receives the context keys it names, or all of them with `**kwargs`, as in Airflow.
    `op_args`, `op_kwargs` and `templates_dict` are Jinja templates (strings inside them are rendered);
    `templates_dict` reaches the callable as the context key `templates_dict`.
    """

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise DagDefinitionError(f"python_callable of task {self.task_id!r} is not callable", self.location)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        if templates_exts:
            self.template_ext = tuple(templates_exts)

    def execute(self, context: dict[str, Any]) -> Any:
        args = resolve_xcom_args(self.op_args, context)
        kwargs = resolve_xcom_args(self.op_kwargs, context)
        context = {**context, **kwargs, "templates_dict": self.templates_dict}  # Airflow's context_merge
        return call_with_context(self.python_callable, args, kwargs, context)


def call_with_context(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
    """Airflow's rule: a **kwargs callable gets the whole context, others the keys they name."""
    signature = inspect.signature(fn)
    params = signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        extra = {k: v for k, v in context.items() if k not in kwargs}
    else:
        bound = signature.bind_partial(*args, **kwargs).arguments
        extra = {k: context[k] for k in params if k in context and k not in bound}
    return fn(*args, **kwargs, **extra)
