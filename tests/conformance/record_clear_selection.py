"""Record which tasks Airflow 3.3 clears for each case in CLEAR_CASES: the scheduler's own selection
(`SerializedDAG.partial_subset` with the task's upstream or downstream, then the setups and teardowns
`DAG.clear` adds). Run it with Airflow's Python (its own virtualenv, never an airstep dependency):

    AIRFLOW_HOME=... /path/to/airflow-venv/bin/python tests/conformance/record_clear_selection.py

It writes airflow_clear_selection.json beside it; tests/unit/test_clearing.py holds airstep's
`tasks_to_clear` to it.
"""

from __future__ import annotations

import json
from pathlib import Path

FIXTURE = Path(__file__).with_name("airflow_clear_selection.json")

# Shapes as DAG files write them (airstep reads the same text). `w` is work, `s`/`t` setups/teardowns.
SHAPES = {
    "chain": """
with DAG("chain", schedule=None, start_date=START) as dag:
    a, b, c, d = (EmptyOperator(task_id=i) for i in "abcd")
    a >> b >> c >> d
""",
    "setup_teardown": """
with DAG("setup_teardown", schedule=None, start_date=START) as dag:
    s = EmptyOperator(task_id="s")
    w1, w2, w3 = (EmptyOperator(task_id=f"w{i}") for i in (1, 2, 3))
    t = EmptyOperator(task_id="t")
    after = EmptyOperator(task_id="after")
    s >> w1 >> w2 >> t.as_teardown(setups=s) >> after
    w2 >> w3
""",
    "setup_without_teardown": """
with DAG("setup_without_teardown", schedule=None, start_date=START) as dag:
    s = EmptyOperator(task_id="s").as_setup()
    w1, w2 = (EmptyOperator(task_id=f"w{i}") for i in (1, 2))
    s >> w1 >> w2
""",
    "nested_setups": """
with DAG("nested_setups", schedule=None, start_date=START) as dag:
    outer_s, inner_s = EmptyOperator(task_id="outer_s"), EmptyOperator(task_id="inner_s")
    outer_t, inner_t = EmptyOperator(task_id="outer_t"), EmptyOperator(task_id="inner_t")
    w = EmptyOperator(task_id="w")
    other = EmptyOperator(task_id="other")
    outer_s >> inner_s >> w >> inner_t.as_teardown(setups=inner_s) >> outer_t.as_teardown(setups=outer_s)
    outer_s >> other >> outer_t
""",
    "diamond": """
with DAG("diamond", schedule=None, start_date=START) as dag:
    top, left, right, bottom, side = (EmptyOperator(task_id=i) for i in ("top", "left", "right", "bottom", "side"))
    top >> [left, right] >> bottom
    right >> side
""",
}
HEADER = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
START = datetime(2026, 1, 1)
"""
# (shape, task_ids, upstream, downstream)
CLEAR_CASES = [
    ("chain", ["b"], False, False),
    ("chain", ["b"], True, False),
    ("chain", ["b"], False, True),
    ("chain", ["b", "d"], True, True),
    ("setup_teardown", ["w2"], False, False),
    ("setup_teardown", ["w2"], False, True),
    ("setup_teardown", ["w2"], True, False),
    ("setup_teardown", ["w3"], False, False),
    ("setup_teardown", ["s"], False, False),
    ("setup_teardown", ["s"], False, True),
    ("setup_teardown", ["t"], False, False),
    ("setup_teardown", ["t"], True, False),
    ("setup_teardown", ["after"], False, False),
    ("setup_teardown", ["after"], True, False),
    ("setup_without_teardown", ["w2"], False, False),
    ("setup_without_teardown", ["s"], False, False),
    ("nested_setups", ["w"], False, False),
    ("nested_setups", ["other"], False, False),
    ("nested_setups", ["inner_s"], False, True),
    ("nested_setups", ["w"], True, True),
    ("diamond", ["left"], False, True),
    ("diamond", ["right"], True, False),
    ("diamond", ["right"], False, True),
]


def source(shape: str) -> str:
    return HEADER + SHAPES[shape]


def _airflow_selection(shape: str, task_ids: list[str], upstream: bool, downstream: bool) -> list[str]:
    from airflow.serialization.serialized_objects import DagSerialization

    namespace: dict = {}
    exec(compile(source(shape), f"{shape}.py", "exec"), namespace)  # noqa: S102 - our own fixture text
    dag = namespace["dag"]
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    subset = serialized.partial_subset(task_ids=task_ids, include_downstream=downstream, include_upstream=upstream)
    chosen = set(subset.task_dict)
    chosen |= set(
        serialized.partial_subset(task_ids=chosen, include_downstream=False, include_upstream=False).task_dict
    )
    return sorted(chosen)


def main() -> None:
    cases = [
        {
            "shape": shape,
            "task_ids": ids,
            "upstream": up,
            "downstream": down,
            "cleared": _airflow_selection(shape, ids, up, down),
        }
        for shape, ids, up, down in CLEAR_CASES
    ]
    FIXTURE.write_text(json.dumps({"shapes": SHAPES, "header": HEADER, "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {FIXTURE}")


if __name__ == "__main__":
    main()
