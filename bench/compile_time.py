"""Compile time for DAGs of 100, 1,000 and 5,000 tasks, beside Airflow's parse + serialize.

Prints, per DAG: load (executing the DAG file), model, compile (graph model -> ASL), and the
result of the Step Functions quota guard. Run: python bench/compile_time.py [--repeat N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import AIRFLOW_PYTHON, ANCHORS, anchor_as_airstep, fan_out_dag_source, layered_dag_source, median_seconds
from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep_compiler import CompileError, CompileOptions, DagSource, compile_dag


def measure(path: Path, repeat: int) -> dict[str, object]:
    loaded = load_dag_file(str(path))
    assert not loaded.errors, loaded.errors
    dag = next(iter(loaded.dags.values()))
    source = DagSource(str(path), loaded.version)
    load_s, _ = median_seconds(lambda: load_dag_file(str(path)), repeat)
    model_s, _ = median_seconds(lambda: DagModel.from_dag(dag), repeat)
    model = DagModel.from_dag(dag)
    unchecked = CompileOptions(check_limits=False)
    compile_s, _ = median_seconds(lambda: compile_dag(model, source, unchecked), repeat)
    compiled = compile_dag(model, source, unchecked)
    try:
        compile_dag(model, source)
        guard = "fits"
    except CompileError as exc:
        guard = f"rejected: {exc.limit}"
    return {
        "tasks": len(model.tasks),
        "load": load_s,
        "model": model_s,
        "compile": compile_s,
        "bytes": compiled.definition_bytes,
        "gates": compiled.gate_count,
        "events": compiled.history_events_per_run,
        "guard": guard,
    }


def whole_process(args: list[str], repeat: int) -> float:
    seconds, _ = median_seconds(lambda: subprocess.run(args, check=True, capture_output=True), repeat)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {}
        for n in (100, 1000, 5000):
            path = folder / f"layered_{n}.py"
            path.write_text(layered_dag_source(f"layered_{n}", n))
            files[f"layered_{n}"] = path
        wide = folder / "fan_out_1000.py"
        wide.write_text(fan_out_dag_source("fan_out_1000", 998))
        files["fan_out_1000"] = wide
        files["random_1000 (anchor)"] = anchor_as_airstep("random_1000", folder)
        print(
            f"{'DAG':<22}{'tasks':>6}{'load':>9}{'model':>9}{'compile':>9}{'total':>9}"
            f"{'bytes':>11}{'gates':>7}{'events':>8}  guard"
        )
        for name, path in files.items():
            r = measure(path, options.repeat)
            total = r["load"] + r["model"] + r["compile"]  # type: ignore[operator]
            print(
                f"{name:<22}{r['tasks']:>6}{r['load']:>8.3f}s{r['model']:>8.3f}s{r['compile']:>8.3f}s{total:>8.3f}s"
                f"{r['bytes']:>11,}{r['gates']:>7}{r['events']:>8}  {r['guard']}"
            )
        anchor = files["random_1000 (anchor)"]
        ours = whole_process(
            [
                sys.executable,
                "-m",
                "airstep_cli.main",
                "compile",
                str(anchor),
                "-o",
                str(folder / "out"),
                "--ignore-limits",
            ],
            3,
        )
        print(f"\nwhole process `airstep compile random_1000.py --ignore-limits` (median of 3): {ours:.2f} s")
        if AIRFLOW_PYTHON.exists():
            theirs = whole_process(
                [str(AIRFLOW_PYTHON), str(ANCHORS / "parse_serialize.py"), str(ANCHORS / "dags" / "random_1000.py")], 3
            )
            print(
                f"whole process Airflow 3.3.2 parse + serialize (median of 3): {theirs:.2f} s "
                f"-> ratio {theirs / ours:.1f}x"
            )
        else:
            print(
                f"Airflow not installed at {AIRFLOW_PYTHON} (see ../shared/anchors/airflow/README.md); "
                "its README gives ~2.3 s"
            )


if __name__ == "__main__":
    main()
