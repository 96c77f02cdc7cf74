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
