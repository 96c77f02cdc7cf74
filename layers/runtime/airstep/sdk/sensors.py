"""Sensors, as Airflow 3.3 defines them: `poke(context)` says whether what the sensor waits for is
there. A sensor holds no compute while it waits: each try of `execute` is one poke, and the state
machine waits between pokes (a Wait state) while the task runner keeps the try, counts the pokes,
computes the next interval (`poke_interval`, `exponential_backoff`, `max_wait`) and ends the try at
`timeout` (failed without retrying, or skipped with `soft_fail`). Both modes behave alike: `poke`
keeps the instance running between pokes, `reschedule` shows it up_for_reschedule.
"""

from __future__ import annotations

import glob
import os
import subprocess
import tempfile
from datetime import datetime, timedelta
from typing import Any

from airstep.errors import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
    DagDefinitionError,
    PokeNotDone,
)
from airstep.sdk.baseoperator import BaseOperator
from airstep.sdk.operators.python import PythonOperator

DEFAULT_TIMEOUT_SECONDS = 7 * 24 * 3600.0  # Airflow's [sensors] default_timeout
MODES = ("poke", "reschedule")


class AirflowSensorTimeout(AirflowException):
    """A sensor ran out of time (Airflow's exception of the same name)."""


class PokeReturnValue:
    """What a poke may return instead of a bool: whether it is done, and the value to push as XCom."""

    def __init__(self, is_done: bool, xcom_value: Any = None) -> None:
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return self.is_done


class BaseSensorOperator(BaseOperator):
    """A task that waits for something: subclasses implement `poke(context)`."""

    def container_refusal(self) -> str | None:
        return "a sensor's pokes run on Lambda, the Step Functions Wait between them holding nothing"

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float | None = None,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: timedelta | float | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poke_interval = _seconds("poke_interval", poke_interval, self)
        self.timeout = _seconds("timeout", DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout, self)
        self.max_wait = None if max_wait is None else _seconds("max_wait", max_wait, self)
        if mode not in MODES:
            raise DagDefinitionError(
                f"The mode must be one of {list(MODES)},'{self.dag.dag_id}.{self.task_id}'; received '{mode}'.",
                self.location,
            )
        if soft_fail and never_fail:
            raise DagDefinitionError(
                "soft_fail and never_fail are mutually exclusive, you can not provide both.", self.location
            )
        self.mode = mode
        self.soft_fail = soft_fail
        self.exponential_backoff = bool(exponential_backoff)
        self.silent_fail = silent_fail
        self.never_fail = never_fail

    def external_lookup(self) -> tuple[str | None, tuple[str, ...], float]:
        """What the task runner reads for each poke (ExternalTaskSensor): none for other sensors."""
        return None, (), 0.0

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        """Override when deriving this class."""
        raise AirflowException("Override me.")

    def execute(self, context: dict[str, Any]) -> Any:
        """One poke (the task runner and the state machine wait between pokes, never this code)."""
        try:
            result = self.poke(context)
        except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException) as exc:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from exc
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise
        except AirflowSkipException:
            raise
        except Exception as exc:
            if self.silent_fail:
                result = False
            elif self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            else:
                raise
        if not result:
            raise PokeNotDone(self.moment(context))
        return result.xcom_value if isinstance(result, PokeReturnValue) else None

    @property
    def waits_for_moment(self) -> bool:
        """A time sensor's poke that is not done names the moment it will be (`moment`)."""
        return False

    def moment(self, context: dict[str, Any]) -> datetime | None:
        """A time sensor's moment: once it has passed, the sensor is done (None: poke again)."""
        return None


class PythonSensor(BaseSensorOperator, PythonOperator):
    """Waits until `python_callable` returns a truthy value (or a done PokeReturnValue)."""

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        return PythonOperator.execute(self, context)


class BashSensor(BaseSensorOperator):
    """Done when `bash_command` exits 0; with `retry_exit_code`, that code pokes again and any other
    fails the task (without it, every non-zero code pokes again), as Airflow's BashSensor."""

    template_fields = ("bash_command", "env")

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, str] | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code

    def poke(self, context: dict[str, Any]) -> bool:
        with tempfile.TemporaryDirectory(prefix="airflowtmp") as folder:
            completed = subprocess.run(  # noqa: S603 - running the DAG author's command is the point
                ["bash", "-c", self.bash_command],
                env=self.env,
                cwd=folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
            )
        for line in completed.stdout.decode(self.output_encoding, errors="backslashreplace").splitlines():
            print(f"[{self.task_id}] {line.rstrip()}", flush=True)
        if completed.returncode == 0:
            return True
        if self.retry_exit_code is not None and completed.returncode != self.retry_exit_code:
            raise AirflowFailException(f"Command exited with return code {completed.returncode}")
        return False


class FileSensor(BaseSensorOperator):
    """Waits for a file or folder (a glob pattern) on the filesystem the task runs on."""

    template_fields = ("filepath",)

    def __init__(self, *, filepath: str, fs_conn_id: str = "fs_default", recursive: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive

    def poke(self, context: dict[str, Any]) -> bool:
        for path in glob.glob(self.filepath, recursive=self.recursive):
            if os.path.isfile(path) or (os.path.isdir(path) and (not self.recursive or any(os.scandir(path)))):
                return True
        return False


def _seconds(name: str, value: Any, sensor: BaseSensorOperator) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise DagDefinitionError(
            f"Operator arg `{name}` must be timedelta object or a non-negative number", sensor.location
        )
    return float(value)
