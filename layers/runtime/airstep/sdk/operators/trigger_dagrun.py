"""TriggerDagRunOperator, as Airflow 3.3's `airflow.providers.standard.operators.trigger_dagrun`.

As in Airflow 3, the operator's code only says what to trigger: `execute` renders and checks its
arguments and raises DagRunTriggerException, and the platform triggers the run (Airflow: its
supervisor; airstep: the task runner, since task code never holds the rights to start runs). The
runner pushes the XCom `trigger_run_id`, skips or fails the task when the run exists, and with
`wait_for_completion` reads the triggered run's state from the records before each poke, holding no
compute between pokes (`deferrable` changes nothing: the wait is already free).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from airstep.contract import XCOM_TRIGGER_RUN_ID
from airstep.errors import AirflowException, DagDefinitionError
from airstep.sdk.baseoperator import BaseOperator
from airstep.sdk.param import NOTSET  # Airflow's one ArgNotSet sentinel
from airstep.states import RunState, RunType

XCOM_RUN_ID = XCOM_TRIGGER_RUN_ID  # Airflow's name for it
XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"
DAG_RUN_STATES = tuple(s.value for s in RunState)
DEFAULT_WAIT_TIMEOUT = 7 * 24 * 3600.0  # a wait with no execution_timeout ends after a week (README)


class DagIsPaused(AirflowException):
    """Raised when the DAG to trigger is paused and `fail_when_dag_is_paused` is set."""

    def __init__(self, dag_id: str) -> None:
        super().__init__(dag_id)
        self.dag_id = dag_id

    def __str__(self) -> str:
        return f"Dag {self.dag_id} is paused"


class DagRunTriggerException(AirflowException):
    """What a TriggerDagRunOperator's `execute` raises: the run it asks the platform to trigger."""

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        dag_run_id: str,
        conf: dict[str, Any] | None,
        logical_date: datetime | None = None,
        reset_dag_run: bool = False,
        skip_when_already_exists: bool = False,
        wait_for_completion: bool = False,
        allowed_states: list[str] | None = None,
        failed_states: list[str] | None = None,
        poke_interval: int = 60,
        deferrable: bool = False,
        fail_when_dag_is_paused: bool = False,
        note: str | None = None,
    ) -> None:
        super().__init__()
        self.trigger_dag_id = trigger_dag_id
        self.dag_run_id = dag_run_id
        self.conf = conf
        self.logical_date = logical_date
        self.reset_dag_run = reset_dag_run
        self.skip_when_already_exists = skip_when_already_exists
        self.wait_for_completion = wait_for_completion
        self.allowed_states = allowed_states or [RunState.SUCCESS.value]
        self.failed_states = failed_states if failed_states is not None else [RunState.FAILED.value]
        self.poke_interval = poke_interval
        self.deferrable = deferrable
        self.fail_when_dag_is_paused = fail_when_dag_is_paused
        self.note = note

    def to_request(self) -> dict[str, Any]:
        """What the executor hands the task runner (JSON)."""
        return {
            "dag_id": self.trigger_dag_id,
            "run_id": self.dag_run_id,
            "conf": self.conf or {},
            "logical_date": self.logical_date.isoformat() if self.logical_date else None,
            "skip_when_already_exists": bool(self.skip_when_already_exists),
            "wait_for_completion": bool(self.wait_for_completion),
            "fail_when_dag_is_paused": bool(self.fail_when_dag_is_paused),
        }


class TriggerDagRunOperator(BaseOperator):
    """Triggers a run of `trigger_dag_id` (a DAG deployed in the same environment, or locally a DAG
    of the same folder)."""

    def container_refusal(self) -> str | None:
        return "the task runner starts the triggered run (and watches it); no task code runs"

    template_fields = (
        "trigger_dag_id",
        "trigger_run_id",
        "logical_date",
        "conf",
        "wait_for_completion",
        "skip_when_already_exists",
    )

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | str | None = None,
        logical_date: str | datetime | None = NOTSET,
        run_after: str | datetime | None = NOTSET,
        reset_dag_run: bool = False,
        wait_for_completion: bool | str = False,
        poke_interval: int = 60,
        allowed_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        skip_when_already_exists: bool | str = False,
        fail_when_dag_is_paused: bool = False,
        note: str | None = None,
        deferrable: bool = False,
        openlineage_inject_parent_info: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.skip_when_already_exists = skip_when_already_exists
        self.fail_when_dag_is_paused = fail_when_dag_is_paused
        self.note = note
        self.deferrable = deferrable
        self.reset_dag_run = reset_dag_run
        self.allowed_states = _states("allowed_states", allowed_states, [RunState.SUCCESS.value], self)
        self.failed_states = _states("failed_states", failed_states, [RunState.FAILED.value], self)
        if not isinstance(trigger_dag_id, str) or not trigger_dag_id:
            raise DagDefinitionError("TriggerDagRunOperator: trigger_dag_id must be a DAG id", self.location)
        if isinstance(poke_interval, bool) or not isinstance(poke_interval, (int, float)) or poke_interval <= 0:
            raise DagDefinitionError("TriggerDagRunOperator: poke_interval must be a positive number", self.location)
        unsupported = {
            "reset_dag_run": (reset_dag_run, "clear the run with `airstep runs clear` instead"),
            "run_after": (run_after is not NOTSET, "a triggered run starts at once"),
        }
        for name, (given, advice) in unsupported.items():
            if given:
                raise DagDefinitionError(
                    f"TriggerDagRunOperator: {name} is not supported by airstep ({advice})", self.location
                )

    @property
    def waits(self) -> bool:
        """Whether a try may wait for the triggered run (a templated flag may)."""
        return _truthy(self.wait_for_completion)

    def execute(self, context: dict[str, Any]) -> Any:
        logical_date = _logical_date(self.logical_date)
        conf = self.conf
        try:
            if conf and isinstance(conf, str):
                conf = json.loads(conf)
            json.dumps(conf)
        except (TypeError, ValueError):
            raise ValueError(f"conf parameter should be JSON Serializable: {self.conf}") from None
        if conf is not None and not isinstance(conf, dict):
            raise ValueError(f"conf parameter should be a JSON object: {self.conf}")
        if self.trigger_run_id:
            run_id = str(self.trigger_run_id)
        else:  # Airflow 3's DagRun.generate_run_id for a manual run
            when = (logical_date or datetime.now(UTC)).isoformat()
            run_id = f"{RunType.MANUAL.value}__{when}" + ("" if logical_date else f"_{_random_suffix()}")
        raise DagRunTriggerException(
            trigger_dag_id=str(self.trigger_dag_id),
            dag_run_id=run_id,
            conf=conf,
            logical_date=logical_date,
            skip_when_already_exists=_truthy(self.skip_when_already_exists),
            wait_for_completion=_truthy(self.wait_for_completion),
            allowed_states=self.allowed_states,
            failed_states=self.failed_states,
            poke_interval=int(self.poke_interval),
            deferrable=self.deferrable,
            fail_when_dag_is_paused=self.fail_when_dag_is_paused,
            note=self.note,
        )


def _states(name: str, given: Iterable[str] | None, default: list[str], op: BaseOperator) -> list[str]:
    if not given:
        return default
    states = [str(getattr(s, "value", s)) for s in given]
    for state in states:
        if state not in DAG_RUN_STATES:
            raise DagDefinitionError(
                f"TriggerDagRunOperator: {name}: {state!r} is not a DAG run state ({', '.join(DAG_RUN_STATES)})",
                op.location,
            )
    return states


def _logical_date(value: Any) -> datetime | None:
    """Airflow's: not given -> now; None -> none; a datetime or an ISO-8601 string (rendered)."""
    if value is NOTSET:
        return datetime.now(UTC)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TypeError(f"Expected str or datetime.datetime type for logical_date. Got {type(value)}")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "", "none")
    return bool(value)


def _random_suffix() -> str:
    import secrets
    import string

    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
