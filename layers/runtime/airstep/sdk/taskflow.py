"""TaskFlow: `@task` functions whose calls return references to their future return values."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from airstep.errors import DagDefinitionError, SourceLocation, caller_location
from airstep.sdk.dag import current_dag
from airstep.sdk.operators.branch import BranchPythonOperator, ShortCircuitOperator
from airstep.sdk.operators.python import PythonOperator
from airstep.sdk.taskgroup import current_task_group
from airstep.sdk.xcom_arg import XComArg, iter_xcom_args

# Names a TaskFlow function may declare to receive them from the run's context, as in Airflow.
CONTEXT_KEYS = frozenset(
    {
        "dag",
        "dag_run",
        "run_id",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "params",
        "task",
        "task_instance",
        "ti",
    }
)


class DecoratedPythonOperator(PythonOperator):
    """The operator behind a TaskFlow call; its arguments may hold upstream XComArgs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for arg in iter_xcom_args([self.op_args, self.op_kwargs]):
            self.add_upstream(arg.operator)


class DecoratedBranchOperator(DecoratedPythonOperator, BranchPythonOperator):
    """`@task.branch`: the function returns the task id(s) to follow."""


class DecoratedShortCircuitOperator(DecoratedPythonOperator, ShortCircuitOperator):
    """`@task.short_circuit`: a falsy return value skips what follows."""


class TaskDecorator:
    """What `@task` returns: call it inside a DAG to add a task; `.override()` changes its arguments."""

    def __init__(
        self,
        function: Callable[..., Any],
        operator_kwargs: dict[str, Any],
        operator_class: type[DecoratedPythonOperator] = DecoratedPythonOperator,
    ) -> None:
        self.operator_class = operator_class
        self.function = function
        self.operator_kwargs = {"multiple_outputs": _returns_a_mapping(function), **operator_kwargs}
        self.signature = inspect.signature(function)
        self.__wrapped__ = function
        self.__name__ = getattr(function, "__name__", "task")
        self.__doc__ = function.__doc__

    def override(self, **operator_kwargs: Any) -> TaskDecorator:
        return TaskDecorator(self.function, {**self.operator_kwargs, **operator_kwargs}, self.operator_class)

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        location = caller_location()
        self._check_arguments(args, kwargs, location)
        operator_kwargs = dict(self.operator_kwargs)
        task_id = operator_kwargs.pop("task_id", None) or self.__name__
        dag = operator_kwargs.get("dag") or current_dag()
        if dag is not None:  # explicit ids too, as Airflow's get_unique_task_id
            group = operator_kwargs.get("task_group") or current_task_group(dag)
            task_id = dag.unique_task_id(task_id, group)
        operator = self.operator_class(
            task_id=task_id,
            python_callable=self.function,
            op_args=args,
            op_kwargs=kwargs,
            location=location,
            doc_md=operator_kwargs.pop("doc_md", self.function.__doc__),
            **operator_kwargs,
        )
        return XComArg(operator)

    def _check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any], location: SourceLocation) -> None:
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise DagDefinitionError(f"task {self.__name__!r}: {exc}", location) from None
        missing = [
            name
            for name, param in self.signature.parameters.items()
            if name not in bound.arguments
            and param.default is inspect.Parameter.empty
            and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY, param.POSITIONAL_ONLY)
            and name not in CONTEXT_KEYS
        ]
        if missing:
            raise DagDefinitionError(f"task {self.__name__!r} is missing argument(s): {', '.join(missing)}", location)


def _returns_a_mapping(function: Callable[..., Any]) -> bool:
    """Airflow's inference: a task annotated to return a dict (any Mapping) has multiple_outputs.
    Only the return annotation is evaluated, as in Airflow."""
    annotations = getattr(function, "__annotations__", {})
    if "return" not in annotations:
        return False

    def returns() -> None: ...

    returns.__annotations__ = {"return": annotations["return"]}
    try:
        hint = typing.get_type_hints(returns, getattr(function, "__globals__", None)).get("return", Any)
    except (NameError, TypeError):  # annotations that cannot be evaluated here
        return False
    origin = getattr(hint, "__origin__", hint)
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _decorator(operator_class: type[DecoratedPythonOperator]) -> Callable[..., Any]:
    def decorate(python_callable: Callable[..., Any] | None = None, **operator_kwargs: Any) -> Any:
        if python_callable is not None:
            return TaskDecorator(python_callable, operator_kwargs, operator_class)
        return lambda function: TaskDecorator(function, operator_kwargs, operator_class)

    return decorate


class _TaskDecoratorCollection:
    """`@task` / `@task(retries=3, ...)`, and the flavours `@task.branch` and `@task.short_circuit`."""

    __call__ = staticmethod(_decorator(DecoratedPythonOperator))
    branch = staticmethod(_decorator(DecoratedBranchOperator))
    short_circuit = staticmethod(_decorator(DecoratedShortCircuitOperator))


task = _TaskDecoratorCollection()
