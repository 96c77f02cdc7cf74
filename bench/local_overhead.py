"""Local per-task overhead of `airstep run`, beside Airflow 3.3.2's dag.test() on the same DAGs.

The anchor DAGs' tasks do no work, so a run's time is the engine's overhead: compiling, moto's
Step Functions interpreter, the task runner and the DynamoDB metadata writes.
Run: python bench/local_overhead.py [--repeat N] [--airflow-repeat N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import AIRFLOW_PYTHON, ANCHORS, anchor_as_airstep, median_seconds
from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep_compiler import DagSource
from airstep_local.engine import LocalEngine, RunRequest


def in_process(path: Path, repeat: int) -> tuple[float, int]:
    loaded = load_dag_file(str(path))
    model = DagModel.from_dag(next(iter(loaded.dags.values())))
    source = DagSource(str(path), loaded.version)
    with LocalEngine() as engine:
        engine.run(model, source, RunRequest())  # warm: imports, DAG file cache

        def once() -> None:
            result = engine.run(model, source, RunRequest())
            assert result.state == "success", result.error

        seconds, _ = median_seconds(once, repeat)
    return seconds, len(model.tasks)


def airflow_env() -> dict[str, str]:
    home = Path(tempfile.gettempdir()) / "airflow-home"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ANCHORS / "dags"),
    }
    if not (home / "airflow.db").exists():
        subprocess.run(
            [str(AIRFLOW_PYTHON), "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--airflow-repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        whole: dict[str, float] = {}
        for name in ("fanout_100", "linear_50"):
            path = anchor_as_airstep(name, folder)
            seconds, tasks = in_process(path, options.repeat)
            print(
                f"{name}: {tasks} tasks, run {seconds:.3f} s in process (median of {options.repeat}) "
                f"= {seconds / tasks * 1000:.1f} ms per task"
            )
            whole[name], _ = median_seconds(
                lambda path=path: subprocess.run(
                    [sys.executable, "-m", "airstep_cli.main", "run", str(path), "--json"],
                    check=True,
                    capture_output=True,
                ),
                3,
            )
            print(f"{name}: whole process `airstep run --json` {whole[name]:.2f} s (median of 3)")
    if not AIRFLOW_PYTHON.exists():
        print(
            f"Airflow not installed at {AIRFLOW_PYTHON} (see ../shared/anchors/airflow/README.md); "
            "its README gives ~13.6 s for fanout_100"
        )
        return
    env = airflow_env()
    for name in ("fanout_100", "linear_50"):
        theirs, _ = median_seconds(
            lambda name=name: subprocess.run(
                [str(AIRFLOW_PYTHON), str(ANCHORS / "dagtest.py"), str(ANCHORS / "dags" / f"{name}.py")],
                env=env,
                check=True,
                capture_output=True,
            ),
            options.airflow_repeat,
        )
        print(
            f"{name}: Airflow 3.3.2 dag.test() whole process {theirs:.2f} s (median of {options.airflow_repeat}) "
            f"-> airstep takes {whole[name] / theirs:.2f} of it ({theirs / whole[name]:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
