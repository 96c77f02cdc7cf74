"""Shared helpers for the benchmark scripts: medians, anchor DAGs, generated DAGs."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANCHORS = ROOT.parent / "shared" / "anchors" / "airflow"
AIRFLOW_PYTHON = Path("/tmp/airflow-venv/bin/python")


def median_seconds(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples


def anchor_as_airstep(name: str, folder: Path) -> Path:
    """The anchor DAG file with its Airflow imports pointed at airstep (the DAG code is unchanged)."""
    text = (ANCHORS / "dags" / f"{name}.py").read_text()
    text = text.replace("from airflow.sdk import", "from airstep import")
    text = text.replace("from airflow.providers.standard.operators.empty import", "from airstep import")
    target = folder / f"{name}.py"
    target.write_text(text)
    return target


def layered_dag_source(dag_id: str, tasks: int, seed: int = 1, width: int = 20) -> str:
    """A random layered DAG: each task depends on 1-3 tasks of the previous layer."""
    rng = random.Random(seed)
    lines = [
        "from airstep import DAG, EmptyOperator",
        f"with DAG({dag_id!r}):",
        f"    t = [EmptyOperator(task_id=f't{{i}}') for i in range({tasks})]",
        "    E = [",
    ]
    for i in range(width, tasks):
        layer_start = (i // width - 1) * width
        for u in rng.sample(range(layer_start, layer_start + width), rng.randint(1, 3)):
            lines.append(f"        ({u}, {i}),")
    lines += ["    ]", "    for u, v in E:", "        t[u] >> t[v]", ""]
    return "\n".join(lines)


def fan_out_dag_source(dag_id: str, width: int) -> str:
    """start -> `width` parallel tasks -> join: a series-parallel DAG (no gates)."""
    return "\n".join(
        [
            "from airstep import DAG, EmptyOperator",
            f"with DAG({dag_id!r}):",
            "    start, join = EmptyOperator(task_id='start'), EmptyOperator(task_id='join')",
            f"    start >> [EmptyOperator(task_id=f'w{{i}}') for i in range({width})] >> join",
            "",
        ]
    )
