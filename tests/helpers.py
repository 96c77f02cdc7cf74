"""Helpers shared by the tests (importable as `helpers`; pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep_compiler import DagSource

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "dags"
BROKEN = Path(__file__).resolve().parent / "broken_dags"


def load_model(path: Path, dag_id: str | None = None) -> tuple[DagModel, DagSource]:
    loaded = load_dag_file(str(path))
    assert not loaded.errors, loaded.errors
    dag = loaded.dags[dag_id] if dag_id else next(iter(loaded.dags.values()))
    return DagModel.from_dag(dag), DagSource(str(path.resolve()), loaded.version)


class KeepMachines:
    """A Step Functions client that keeps state machines (the engine deletes each after its run), so
    that a test can read an execution's history afterwards."""

    def __init__(self, sfn: object) -> None:
        self._sfn = sfn

    def __getattr__(self, name: str) -> object:
        return (lambda **_: None) if name == "delete_state_machine" else getattr(self._sfn, name)


def executions(sfn: object, dag_id: str) -> list[dict]:
    """The executions of the DAG's state machine, newest first."""
    (machine,) = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == dag_id]
    return sfn.list_executions(stateMachineArn=machine)["executions"]


def entered_states(sfn: object, execution_arn: str) -> list[str]:
    """The names of the states an execution entered, in order."""
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
