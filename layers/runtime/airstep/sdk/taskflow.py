"""TaskFlow: `@task` functions whose calls return references to their future return values."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from airstep.errors import DagDefinitionError, SourceLocation, caller_location
from airstep.sdk.dag import current_dag
from airstep.sdk.operators.bash import BashOperator
from airstep.sdk.operators.branch import BranchPythonOperator, ShortCircuitOperator
from airstep.sdk.operators.python import PythonOperator
from airstep.sdk.sensors import BaseSensorOperator
from airstep.sdk.taskgroup import TaskGroupDecorator, current_task_group
from airstep.sdk.xcom_arg import XComArg
from airstep.trigger_rule import TriggerRule

# Names a TaskFlow function may declare to receive them from the run's context, as in Airflow.
CONTEXT_KEYS = frozenset(
    {
        "conn",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "logical_date",
        "macros",
        "params",
        "run_id",
        "task",
        "task_instance",
        "task_instance_key_str",
        "templates_dict",
        "test_mode",
        "ti",
        "try_number",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
    }
)


class DecoratedPythonOperator(PythonOperator):
    """The operator behind a TaskFlow call; its arguments may hold upstream XComArgs (template
    fields: each one found sets the task downstream of the task that makes it)."""


class DecoratedBranchOperator(DecoratedPythonOperator, BranchPythonOperator):
    """`@task.branch`: the function returns the task id(s) to follow."""


class DecoratedShortCircuitOperator(DecoratedPythonOperator, ShortCircuitOperator):
    """`@task.short_circuit`: a falsy return value skips what follows."""


class DecoratedBashOperator(DecoratedPythonOperator, BashOperator):
    """`@task.bash`: the function returns the bash command, which is then rendered as a template
    (the function's arguments were rendered before it ran) and run as BashOperator runs it."""

    template_fields = (*PythonOperator.template_fields, *BashOperator.template_fields)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(bash_command=COMMAND_SET_WHEN_RUN, **kwargs)

    def execute(self, context: dict[str, Any]) -> Any:
        from airstep.sdk.templater import render, template_env

        command = PythonOperator.execute(self, context)
        if not isinstance(command, str) or not command.strip():
            raise TypeError("The returned value from the TaskFlow callable must be a non-empty string.")
        self.bash_command = render(command, context, template_env(self.dag), self.template_ext)
        return BashOperator.execute(self, context)


class DecoratedSensorOperator(BaseSensorOperator, DecoratedPythonOperator):
    """`@task.sensor`: the function is the poke (a bool or a PokeReturnValue)."""

    def poke(self, context: dict[str, Any]) -> Any:
        return PythonOperator.execute(self, context)


COMMAND_SET_WHEN_RUN = "# @task.bash: the command is what the function returns when the task runs"


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
        self.is_setup = False
        self.is_teardown = False
        self.on_failure_fail_dagrun = False
        self.operator_kwargs = {"multiple_outputs": _returns_a_mapping(function), **operator_kwargs}
        self.signature = inspect.signature(function)
        self.__wrapped__ = function
        self.__name__ = getattr(function, "__name__", "task")
        self.__doc__ = function.__doc__

    def override(self, **operator_kwargs: Any) -> TaskDecorator:
        overridden = TaskDecorator(self.function, {**self.operator_kwargs, **operator_kwargs}, self.operator_class)
        overridden.is_setup, overridden.is_teardown = self.is_setup, self.is_teardown
        overridden.on_failure_fail_dagrun = self.on_failure_fail_dagrun
        return overridden

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        location = caller_location()
        self._check_arguments(args, kwargs, location)
        return XComArg(self._operator(args, kwargs, location))

    def partial(self, **kwargs: Any) -> PartialTask:
        """Airflow's `.partial(...)`: the arguments every mapped instance shares."""
        return PartialTask(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        """One task, mapped over the cross product of `mapped` (lists, dicts or upstream outputs)."""
        return PartialTask(self, {}).expand(**mapped)

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        """One task per dict of arguments in `kwargs` (a list, or an upstream output)."""
        return PartialTask(self, {}).expand_kwargs(kwargs)

    def _operator(self, args: tuple[Any, ...], kwargs: dict[str, Any], location: SourceLocation) -> Any:
        operator_kwargs = dict(self.operator_kwargs)
        if self.is_teardown:
            if "trigger_rule" in operator_kwargs:
                raise DagDefinitionError("Trigger rule not configurable for teardown tasks.", location)
            operator_kwargs["trigger_rule"] = TriggerRule.ALL_DONE_SETUP_SUCCESS
        fail_dagrun = operator_kwargs.pop("on_failure_fail_dagrun", self.on_failure_fail_dagrun)
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
        operator.is_setup, operator.is_teardown = self.is_setup, self.is_teardown
        operator.on_failure_fail_dagrun = fail_dagrun
        return operator

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


class PartialTask:
    """A TaskFlow task's shared arguments, waiting for `.expand(...)`."""

    def __init__(self, decorator: TaskDecorator, kwargs: dict[str, Any]) -> None:
        self.decorator = decorator
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> XComArg:
        from airstep.sdk.mapping import ExpandInput, check_not_both

        location = caller_location()
        check_not_both(self.kwargs, mapped, location)
        self.decorator._check_arguments((), {**self.kwargs, **mapped}, location)
        return self._mapped(ExpandInput(arguments=mapped), location)

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        from airstep.sdk.mapping import ExpandInput

        return self._mapped(ExpandInput(kwargs_list=kwargs), caller_location())

    def _mapped(self, expand_input: Any, location: SourceLocation) -> XComArg:
        from airstep.sdk.mapping import set_expand_input

        operator = self.decorator._operator((), self.kwargs, location)
        set_expand_input(operator, expand_input, location)
        return XComArg(operator)


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
    """`@task` / `@task(retries=3, ...)`, and the flavours `@task.bash`, `@task.branch` and
    `@task.short_circuit`."""

    __call__ = staticmethod(_decorator(DecoratedPythonOperator))
    bash = staticmethod(_decorator(DecoratedBashOperator))
    branch = staticmethod(_decorator(DecoratedBranchOperator))
    short_circuit = staticmethod(_decorator(DecoratedShortCircuitOperator))
    sensor = staticmethod(_decorator(DecoratedSensorOperator))


task = _TaskDecoratorCollection()


def setup(python_callable: Callable[..., Any] | TaskDecorator) -> TaskDecorator:
    """`@setup`: a TaskFlow task marked as a setup task."""
    decorated = _as_task(python_callable)
    decorated.is_setup = True
    return decorated


def _as_task(function: Callable[..., Any] | TaskDecorator) -> TaskDecorator:
    if isinstance(function, TaskGroupDecorator):
        raise DagDefinitionError("Task groups cannot be marked as setup or teardown.", caller_location())
    return function if isinstance(function, TaskDecorator) else task(function)


def teardown(
    python_callable: Callable[..., Any] | TaskDecorator | None = None, *, on_failure_fail_dagrun: bool = False
) -> Any:
    """`@teardown` / `@teardown(on_failure_fail_dagrun=True)`: a TaskFlow task marked as a teardown."""

    def mark(function: Callable[..., Any] | TaskDecorator) -> TaskDecorator:
        decorated = _as_task(function)
        decorated.is_teardown = True
        decorated.on_failure_fail_dagrun = on_failure_fail_dagrun
        return decorated

    return mark if python_callable is None else mark(python_callable)
