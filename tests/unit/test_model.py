import random

import pytest

from airstep import DAG, EmptyOperator
from airstep.model import DagModel
from helpers import EXAMPLES, load_model


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_examples_round_trip_exactly(path):
    model, _ = load_model(path)
    text = model.to_json()
    again = DagModel.from_json(text)
    assert again == model
    assert again.to_json() == text


def test_random_dag_round_trips():
    rng = random.Random(7)
    with DAG("rand", params={"n": [1, 2, {"x": None}]}, tags=["a", "b"]) as d:
        ops = [
            EmptyOperator(task_id=f"t{i}", retries=rng.randint(0, 3), execution_timeout=rng.choice([None, 30]))
            for i in range(60)
        ]
        for i in range(60):
            for j in range(i + 1, 60):
                if rng.random() < 0.08:
                    ops[i] >> ops[j]
    model = DagModel.from_dag(d)
    assert DagModel.from_json(model.to_json()) == model
    assert sum(len(t.upstream) for t in model.tasks) == sum(len(o.upstream_task_ids) for o in ops)


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="format"):
        DagModel.from_dict({"format": 99})
