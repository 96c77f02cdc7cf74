"""A DAG that is not series-parallel: an N-shape inside a 3x3 grid.

No nesting of sequences and parallel blocks expresses it without delaying some task, so the
compiler adds gates (see docs/design.md). Durations are skewed to make a false dependency visible.
"""

import time
from datetime import datetime

from airstep import DAG, PythonOperator


def work(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


with DAG("non_series_parallel", schedule=None, start_date=datetime(2026, 1, 1), tags=["example"]):
    # N-shape: a -> c, b -> c, b -> d
    a = PythonOperator(task_id="a", python_callable=work, op_args=[1.0])
    b = PythonOperator(task_id="b", python_callable=work, op_args=[0.1])
    c = PythonOperator(task_id="c", python_callable=work, op_args=[0.1])
    d = PythonOperator(task_id="d", python_callable=work, op_args=[0.1])
    [a, b] >> c
    b >> d

    # 3x3 grid: g_i_j depends on g_(i-1)_j and g_i_(j-1)
    grid = {
        (i, j): PythonOperator(task_id=f"g_{i}_{j}", python_callable=work, op_args=[0.05])
        for i in range(3)
        for j in range(3)
    }
    for (i, j), op in grid.items():
        if i:
            grid[(i - 1, j)] >> op
        if j:
            grid[(i, j - 1)] >> op
    d >> grid[(0, 0)]
