"""BashOperator: runs a bash command; its last line of output becomes the task's XCom."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airstep.errors import AirflowSkipException, DagDefinitionError
from airstep.sdk.baseoperator import BaseOperator
from airstep.sdk.xcom_arg import Reference


class BashOperator(BaseOperator):
    """Runs `bash_command` with bash; a non-zero exit fails the task, exit 99 skips it.

    As in Airflow, `env` replaces the environment unless `append_env=True`, and the last line of
    output (stdout and stderr together; "" if none), passed through `output_processor`, becomes the
    task's XCom. `bash_command`,
    `env` and `cwd` are Jinja templates; a command ending in `.sh` or `.bash` names a template file.
    A command that inherits the environment and finds no `AIRFLOW_HOME` in it gets a writable
    scratch folder there (Lambda's file system is read-only elsewhere), so commands written for
    Airflow that use it keep working.
    """

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        skip_on_exit_code: int | Sequence[int] | None = 99,
        output_processor: Callable[[str], Any] = lambda result: result,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(bash_command, str) or not bash_command.strip():
            raise DagDefinitionError(f"bash_command of task {self.task_id!r} must be a non-empty string", self.location)
        if env is not None and not all(isinstance(k, str) and isinstance(v, (str, Reference)) for k, v in env.items()):
            raise DagDefinitionError(f"env of task {self.task_id!r} must map strings to strings", self.location)
        self.bash_command = bash_command
        self.env = dict(env) if env is not None else None
        self.append_env = append_env
        self.output_processor = output_processor
        self.cwd = cwd
        if skip_on_exit_code is None:
            self.skip_on_exit_code: list[int] = []
        elif isinstance(skip_on_exit_code, int):
            self.skip_on_exit_code = [skip_on_exit_code]
        else:
            self.skip_on_exit_code = list(skip_on_exit_code)

    def execute(self, context: dict[str, Any]) -> Any:
        inherits = self.env is None or self.append_env
        env = dict(os.environ) if inherits else {}
        env.update(self.env or {})
        if inherits and "AIRFLOW_HOME" not in env:
            home = Path(tempfile.gettempdir()) / "airflow"
            home.mkdir(exist_ok=True)
            env["AIRFLOW_HOME"] = str(home)
        env.update(
            AIRFLOW_CTX_DAG_ID=context["dag"].dag_id,
            AIRFLOW_CTX_TASK_ID=self.task_id,
            AIRFLOW_CTX_DAG_RUN_ID=context["run_id"],
            AIRFLOW_CTX_TRY_NUMBER=str(context["ti"].try_number),
            AIRFLOW_CTX_LOGICAL_DATE=context.get("ts") or "",
        )
        completed = subprocess.run(  # noqa: S603 - running the DAG author's command is the point
            ["bash", "-c", self.bash_command],
            env=env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, read line by line on "\n", as Airflow's SubprocessHook
            timeout=self.execution_timeout,
            check=False,
        )
        output = completed.stdout.decode("utf-8", errors="backslashreplace").removesuffix("\n")
        lines = [line.rstrip() for line in output.split("\n")] if completed.stdout else []
        for line in lines:
            print(f"[{self.task_id}] {line}", flush=True)
        if completed.returncode in self.skip_on_exit_code:
            raise AirflowSkipException(f"Bash command returned exit code {completed.returncode}. Skipping.")
        if completed.returncode != 0:
            raise RuntimeError(
                f"Bash command failed. The command returned a non-zero exit code {completed.returncode}."
            )
        return self.output_processor(lines[-1] if lines else "")
