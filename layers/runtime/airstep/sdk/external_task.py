"""ExternalTaskSensor, as Airflow 3.3's `airflow.providers.standard.sensors.external_task`: waits for
another DAG's run at the same logical date (or `execution_delta` earlier), or for some of its tasks,
to reach `allowed_states`; `failed_states` fail it and `skipped_states` skip it.

Task code never reads run records: the task runner reads the other run's state and its tasks' states
from airstep's records before each poke (which run and tasks are known when the DAG is compiled) and
hands them to the try, where `ti.get_dr_count` and `ti.get_ti_count` answer from them, as Airflow's
API server answers them for its sensor. So what the sensor reads cannot be templated or computed
(`execution_date_fn`): a clear error says so where the sensor is written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import timedelta
from typing import Any

from airstep.errors import AirflowException, AirflowSkipException, DagDefinitionError
from airstep.sdk.sensors import BaseSensorOperator
from airstep.states import RunState, RunType, TaskState

DAG_STATES = frozenset(s.value for s in RunState)
# Airflow's task states: airstep's, and those an airstep task never reaches (it may still be asked for)
TASK_STATES = frozenset(
    {
        *(s.value for s in TaskState),
        RunState.QUEUED.value,
        "removed",
        RunType.SCHEDULED.value,  # the same word as the run type
        "restarting",
        "deferred",
        "awaiting_input",
    }
)


class AirflowExternalTaskSensorException(AirflowException):
    """Base of the errors an ExternalTaskSensor raises (Airflow's names)."""


class ExternalDagFailedError(AirflowExternalTaskSensorException):
    """The external DAG run reached a failed state."""


class ExternalTaskFailedError(AirflowExternalTaskSensorException):
    """An external task reached a failed state."""


class DuplicateStateError(AirflowExternalTaskSensorException):
    """The same state is given in more than one of allowed, skipped and failed states."""


class ExternalTaskSensor(BaseSensorOperator):
    """Waits for a run of `external_dag_id` (or its tasks `external_task_id(s)`) to reach `allowed_states`."""

    template_fields = ("external_dag_id", "external_task_id", "external_task_ids", "external_task_group_id")

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Any = None,
        check_existence: bool = False,
        poll_interval: float | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        if poll_interval is not None:
            kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.allowed_states = [str(s) for s in allowed_states] if allowed_states else [TaskState.SUCCESS.value]
        self.skipped_states = [str(s) for s in skipped_states] if skipped_states else []
        self.failed_states = [str(s) for s in failed_states] if failed_states else []
        given = self.allowed_states + self.skipped_states + self.failed_states
        if len(set(given)) != len(given):
            raise DagDefinitionError(
                "DuplicateStateError: Duplicate values provided across allowed_states, skipped_states and "
                "failed_states.",
                self.location,
            )
        external_task_ids = list(external_task_ids) if external_task_ids else None
        if external_task_id is not None and external_task_ids is not None:
            raise DagDefinitionError(
                "Only one of `external_task_id` or `external_task_ids` may be provided to ExternalTaskSensor; "
                "use external_task_id or external_task_ids or external_task_group_id.",
                self.location,
            )
        if external_task_id is not None:
            external_task_ids = [external_task_id]
        valid, kind = (TASK_STATES, "task") if external_task_ids or external_task_group_id else (DAG_STATES, "DAG")
        if not set(given) <= valid:
            raise DagDefinitionError(
                f"Valid values for `allowed_states`, `skipped_states` and `failed_states` for a {kind}: "
                f"{sorted(valid)}",
                self.location,
            )
        if execution_delta is not None and execution_date_fn is not None:
            raise DagDefinitionError(
                "Only one of `execution_delta` or `execution_date_fn` may be provided to ExternalTaskSensor; not both.",
                self.location,
            )
        unsupported = {
            "execution_date_fn": "the run it reads is looked up before the try: use execution_delta",
            "external_task_group_id": "name the group's tasks in external_task_ids",
        }
        for name, advice in unsupported.items():
            if locals()[name] is not None:
                raise DagDefinitionError(
                    f"ExternalTaskSensor: {name} is not supported by airstep ({advice})", self.location
                )
        for name, value in (("external_dag_id", external_dag_id), ("external_task_ids", external_task_ids)):
            if "{{" in repr(value):
                raise DagDefinitionError(
                    f"ExternalTaskSensor: {name} cannot be a template in airstep (the run and tasks it reads "
                    "are looked up before the try)",
                    self.location,
                )
        if external_task_ids and len(external_task_ids) != len(set(external_task_ids)):
            raise DagDefinitionError("Duplicate task_ids passed in external_task_ids parameter", self.location)
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = external_task_ids
        self.external_task_group_id = None
        self.execution_delta = execution_delta
        self.execution_date_fn = None
        self.check_existence = check_existence
        self.deferrable = deferrable

    def external_lookup(self) -> tuple[str | None, tuple[str, ...], float]:
        delta = self.execution_delta.total_seconds() if self.execution_delta else 0.0
        return self.external_dag_id, tuple(self.external_task_ids or ()), delta

    def poke(self, context: dict[str, Any]) -> bool:
        ti = context["ti"]
        dates = [context["logical_date"] - (self.execution_delta or timedelta(0))]

        def count(states: list[str]) -> float:
            if self.external_task_ids:
                found = ti.get_ti_count(
                    dag_id=self.external_dag_id, task_ids=self.external_task_ids, logical_dates=dates, states=states
                )
                return found / len(self.external_task_ids)
            return ti.get_dr_count(dag_id=self.external_dag_id, logical_dates=dates, states=states)

        what = f"tasks {self.external_task_ids}" if self.external_task_ids else "DAG"
        subject = (
            f"Some of the external tasks {self.external_task_ids} in DAG {self.external_dag_id}"
            if self.external_task_ids
            else f"The external DAG {self.external_dag_id}"
        )
        if self.failed_states and count(self.failed_states) > 0:
            if self.soft_fail:
                raise AirflowSkipException(f"{subject} failed. Skipping due to soft_fail.")
            failed = ExternalTaskFailedError if self.external_task_ids else ExternalDagFailedError
            raise failed(f"{subject} failed.")
        if self.skipped_states and count(self.skipped_states) > 0:
            raise AirflowSkipException(f"{subject} reached a state in our states-to-skip-on list. Skipping.")
        print(f"Poking for {what} in dag {self.external_dag_id} on {dates[0].isoformat()} ... ", flush=True)
        return count(self.allowed_states) == len(dates)
