"""The operators airstep runs: Python callables, bash commands and no-ops."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airstep.errors import DagDefinitionError
from airstep.sdk.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """Does nothing; useful to shape the graph."""

    kind = "empty"


class PythonOperator(BaseOperator):
    """Calls `python_callable(*op_args, **op_kwargs)`; the return value becomes its XCom."""

    kind = "python"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise DagDefinitionError(f"python_callable of task {self.task_id!r} is not callable", self.location)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})

    def execute_spec(self) -> dict[str, Any]:
        fn = self.python_callable
        return {"callable": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"}


class BashOperator(BaseOperator):
    """Runs `bash_command` with bash; a non-zero exit fails the task, exit 99 skips it.

    As in Airflow, `env` replaces the environment unless `append_env=True`, and the last line
    written to stdout becomes the task's XCom.
    """

    kind = "bash"

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        skip_on_exit_code: int | Sequence[int] | None = 99,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(bash_command, str) or not bash_command.strip():
            raise DagDefinitionError(f"bash_command of task {self.task_id!r} must be a non-empty string", self.location)
        if env is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise DagDefinitionError(f"env of task {self.task_id!r} must map strings to strings", self.location)
        self.bash_command = bash_command
        self.env = dict(env) if env is not None else None
        self.append_env = append_env
        self.cwd = cwd
        if skip_on_exit_code is None:
            self.skip_on_exit_code: list[int] = []
        elif isinstance(skip_on_exit_code, int):
            self.skip_on_exit_code = [skip_on_exit_code]
        else:
            self.skip_on_exit_code = list(skip_on_exit_code)

    def execute_spec(self) -> dict[str, Any]:
        return {
            "bash_command": self.bash_command,
            "env": self.env,
            "append_env": self.append_env,
            "cwd": self.cwd,
            "skip_on_exit_code": self.skip_on_exit_code,
        }
