"""The compile plan keeps every dependency and adds none, on any DAG shape."""

import random

import pytest

from airstep.model import DagModel, TaskModel
from airstep_compiler.plan import Block, Parallel, Sequence, Step, build_plan


def model_from_edges(n: int, edges: list[tuple[int, int]]) -> DagModel:
    ups: dict[int, list[str]] = {i: [] for i in range(n)}
    for u, v in edges:
        ups[v].append(f"t{u}")
    tasks = tuple(TaskModel(task_id=f"t{i}", upstream=tuple(sorted(ups[i])), line=i) for i in range(n))
    return DagModel(dag_id="g", file="g.py", line=1, tasks=tasks)


def ancestors(model: DagModel) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for t in model.tasks:  # tasks are generated in topological order
        result[t.task_id] = set().union(*({u} | result[u] for u in t.upstream)) if t.upstream else set()
    return result


def must_finish_before(block: Block, before: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """Tasks the structure (sequences and gates) makes each task wait for."""
    if isinstance(block, Step):
        return {block.task_id: set(before) | set(block.gate)}
    result: dict[str, set[str]] = {}
    if isinstance(block, Parallel):
        for branch in block.branches:
            result.update(must_finish_before(branch, before))
        return result
    done = set(before)
    for item in block.items:
        part = must_finish_before(item, frozenset(done))
        result.update(part)
        done |= set(part)
    return result


def assert_exact(model: DagModel) -> None:
    plan = build_plan(model)
    anc = ancestors(model)
    waits = must_finish_before(plan.root)
    assert sorted(waits) == sorted(anc), "every task appears exactly once"
    for t in model.tasks:
        forced = waits[t.task_id]
        assert forced <= anc[t.task_id], f"{t.task_id} waits for a non-ancestor: {forced - anc[t.task_id]}"
        guaranteed = set().union(*({u} | anc[u] for u in forced)) if forced else set()
        assert set(t.upstream) <= guaranteed, f"{t.task_id} may start before {set(t.upstream) - guaranteed}"
    for upstream, downstream in plan.signals.items():
        for d in downstream:
            gate = next(s for s in _steps(plan.root) if s.task_id == d).gate
            assert upstream in gate


def _steps(block: Block):
    if isinstance(block, Step):
        yield block
    else:
        for child in block.items if isinstance(block, Sequence) else block.branches:
            yield from _steps(child)


def test_chain_is_one_sequence_without_gates():
    plan = build_plan(model_from_edges(4, [(0, 1), (1, 2), (2, 3)]))
    assert plan.root == Sequence(tuple(Step(f"t{i}") for i in range(4)))


def test_fan_out_fan_in_is_a_parallel_without_gates():
    edges = [(0, i) for i in range(1, 6)] + [(i, 6) for i in range(1, 6)]
    plan = build_plan(model_from_edges(7, edges))
    assert plan.root == Sequence((Step("t0"), Parallel(tuple(Step(f"t{i}") for i in range(1, 6))), Step("t6")))
    assert plan.signals == {}


def test_complete_bipartite_join_is_series():
    edges = [(u, v) for u in (0, 1) for v in (2, 3)]
    plan = build_plan(model_from_edges(4, edges))
    assert plan.root == Sequence((Parallel((Step("t0"), Step("t1"))), Parallel((Step("t2"), Step("t3")))))


def test_n_shape_gates_each_task_on_its_upstreams():
    plan = build_plan(model_from_edges(4, [(0, 2), (1, 2), (1, 3)]))
    assert plan.root == Parallel((Step("t0"), Step("t1"), Step("t2", ("t0", "t1")), Step("t3", ("t1",))))
    assert plan.signals == {"t0": ["t2"], "t1": ["t2", "t3"]}
    assert_exact(model_from_edges(4, [(0, 2), (1, 2), (1, 3)]))


@pytest.mark.parametrize("seed", range(40))
def test_random_dags_are_exact(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 40)
    density = rng.choice([0.05, 0.15, 0.4])
    edges = [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < density]
    assert_exact(model_from_edges(n, edges))


def test_grid_is_exact():
    k = 6
    idx = lambda i, j: i * k + j  # noqa: E731
    edges = [(idx(i - 1, j), idx(i, j)) for i in range(1, k) for j in range(k)]
    edges += [(idx(i, j - 1), idx(i, j)) for i in range(k) for j in range(1, k)]
    assert_exact(model_from_edges(k * k, edges))


def simulate_makespan(model: DagModel, durations: dict[str, float]) -> float:
    """Event simulation of the plan: a task starts when everything the structure waits for is done."""
    waits = must_finish_before(build_plan(model).root)
    finish: dict[str, float] = {}
    for t in model.tasks:
        start = max((finish[u] for u in waits[t.task_id]), default=0.0)
        finish[t.task_id] = start + durations[t.task_id]
    return max(finish.values())


@pytest.mark.parametrize("seed", range(10))
def test_makespan_equals_critical_path_with_skewed_durations(seed):
    rng = random.Random(100 + seed)
    n = 30
    edges = [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < 0.12]
    model = model_from_edges(n, edges)
    durations = {t.task_id: rng.choice([0.2, 2.0]) * rng.random() for t in model.tasks}
    critical: dict[str, float] = {}
    for t in model.tasks:
        critical[t.task_id] = max((critical[u] for u in t.upstream), default=0.0) + durations[t.task_id]
    assert simulate_makespan(model, durations) == pytest.approx(max(critical.values()))
