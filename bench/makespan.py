"""Makespan versus critical path on skewed, non-series-parallel DAGs run by the local engine.

Each DAG is an N-shape of chains (a -> c, b -> c, b -> d, repeated and linked) whose tasks sleep
0.2-2 s, so a false dependency between branches would show as lost seconds. The critical path is
computed from the recorded task durations; the makespan is first start to last end.
Run: python bench/makespan.py [--dags N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep_compiler import DagSource
from airstep_local.engine import LocalEngine, RunRequest

TEMPLATE = """
import time
from airstep import DAG, PythonOperator

def work(seconds):
    time.sleep(seconds)

with DAG({dag_id!r}):
    t = {{}}
{tasks}
{edges}
"""


def n_shaped_dag(dag_id: str, seed: int, blocks: int = 3) -> str:
    """`blocks` N-shapes in a row: a_i -> c_i, b_i -> c_i, b_i -> d_i, and c_i, d_i -> next a, b."""
    rng = random.Random(seed)
    tasks, edges = [], []
    for i in range(blocks):
        for name in "abcd":
            seconds = round(rng.uniform(0.2, 2.0), 2)
            tasks.append(
                f"    t['{name}{i}'] = PythonOperator(task_id='{name}{i}', python_callable=work, op_args=[{seconds}])"
            )
        edges += [f"    t['a{i}'] >> t['c{i}']", f"    t['b{i}'] >> t['c{i}']", f"    t['b{i}'] >> t['d{i}']"]
        if i:
            edges += [f"    t['c{i - 1}'] >> t['a{i}']", f"    t['d{i - 1}'] >> t['b{i}']"]
    return TEMPLATE.format(dag_id=dag_id, tasks="\n".join(tasks), edges="\n".join(edges))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dags", type=int, default=5)
    options = parser.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory() as tmp, LocalEngine() as engine:
        for seed in range(options.dags):
            path = Path(tmp) / f"n_{seed}.py"
            path.write_text(n_shaped_dag(f"n_shape_{seed}", seed))
            loaded = load_dag_file(str(path))
            model = DagModel.from_dag(next(iter(loaded.dags.values())))
            result = engine.run(model, DagSource(str(path), loaded.version), RunRequest())
            assert result.state == "success", result.error
            times = {t.task_id: (datetime.fromisoformat(t.start), datetime.fromisoformat(t.end)) for t in result.tasks}
            finish: dict[str, float] = {}
            for task in model.tasks:  # tasks are defined in topological order
                duration = (times[task.task_id][1] - times[task.task_id][0]).total_seconds()
                finish[task.task_id] = max((finish[u] for u in task.upstream), default=0.0) + duration
            critical = max(finish.values())
            makespan = (max(e for _, e in times.values()) - min(s for s, _ in times.values())).total_seconds()
            ratios.append(makespan / critical)
            print(
                f"{model.dag_id}: {len(model.tasks)} tasks, critical path {critical:.2f} s, makespan {makespan:.2f} s, "
                f"ratio {makespan / critical:.3f}"
            )
    print(f"median makespan / critical path: {statistics.median(ratios):.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
