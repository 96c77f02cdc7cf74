"""A mapped task of N instances (producer -> N mapped tries -> reduce), the same unmodified Airflow
file run by `airstep run` and by Airflow 3.3.2's dag.test(), whole process each; peak memory of the
airstep process too. Over 40 instances airstep runs them as a Distributed Map (child executions);
the cost per instance across sizes shows whether it stays linear. Airflow runs only sizes within its
default max_map_length (1,024): it refuses more.

Run: python bench/mapping.py [--items 1000 10000] [--repeat 3] [--airflow-repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import AIRFLOW_PYTHON, ANCHORS, median_seconds

MAPPED_DAG = """
import pendulum
from airflow.sdk import DAG, task

with DAG("map_{items}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def numbers():
        return list(range({items}))

    @task
    def double(x):
        return 2 * x

    @task
    def total(values):
        return sum(values)

    total(double.expand(x=numbers()))
"""


AIRFLOW_MAX_MAP_LENGTH = 1024


def airstep_run(path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "airstep_cli.main", "run", str(path), "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and '"state": "success"' in proc.stdout, proc.stderr[-2000:]


def airflow_run(path: Path, home: Path) -> None:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(path.parent),
    }
    if not (home / "airflow.db").exists():
        subprocess.run(
            [str(AIRFLOW_PYTHON), "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
    proc = subprocess.run(
        [str(AIRFLOW_PYTHON), str(ANCHORS / "dagtest.py"), str(path)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "success" in proc.stdout, proc.stderr[-2000:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--airflow-repeat", type=int, default=1)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for items in options.items:
            path = Path(tmp) / f"dags_{items}" / f"map_{items}.py"
            path.parent.mkdir()
            path.write_text(MAPPED_DAG.format(items=items))
            repeat = options.repeat if items <= 1000 else 1
            ours, samples = median_seconds(lambda path=path: airstep_run(path), repeat)
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"map of {items:,}: `airstep run` whole process {ours:.2f} s (median of {repeat}: "
                f"{', '.join(f'{s:.2f}' for s in samples)}), {1000 * ours / items:.1f} ms per instance, "
                f"peak memory so far {peak_mb:.0f} MB"
            )
            if items > AIRFLOW_MAX_MAP_LENGTH:
                print(f"map of {items:,}: Airflow 3.3.2 refuses it (max_map_length {AIRFLOW_MAX_MAP_LENGTH:,})")
                continue
            if not AIRFLOW_PYTHON.exists():
                print(f"Airflow not installed at {AIRFLOW_PYTHON} (see ../shared/anchors/airflow/README.md)")
                continue
            home = Path(tmp) / "airflow-home"
            theirs, samples = median_seconds(
                lambda path=path, home=home: airflow_run(path, home), options.airflow_repeat
            )
            print(
                f"map of {items:,}: Airflow 3.3.2 dag.test() whole process {theirs:.2f} s "
                f"(median of {options.airflow_repeat}) -> airstep takes {ours / theirs:.2f} of it "
                f"({theirs / ours:.1f}x faster)"
            )


if __name__ == "__main__":
    main()
