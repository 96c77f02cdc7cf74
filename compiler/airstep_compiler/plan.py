"""Turns any DAG into a nest of sequences and parallel blocks, with gates for the edges left over.

The plan keeps every dependency and adds none: a task starts when its own upstreams are done, so a
run's makespan is the DAG's critical path. Series-parallel parts become plain Sequence/Parallel blocks;
in a connected part with no series cut, every task starts in parallel behind a *gate* listing its
upstreams in that part: it waits on a task token that its last such upstream releases (see
docs/design.md).

Sets of tasks are Python ints used as bitsets over topological positions, so ancestor tests are cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from airstep.model import DagModel, TaskModel
from airstep.trigger_rule import TriggerRule


@dataclass(frozen=True, slots=True)
class Step:
    """One task; `gate` lists upstream task ids the structure alone does not guarantee are done."""

    task_id: str
    gate: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sequence:
    items: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Parallel:
    branches: tuple[Block, ...]


Block = Step | Sequence | Parallel


@dataclass(slots=True)
class Plan:
    """The block tree plus, per task, the downstream tasks whose gates it must signal."""

    root: Block
    signals: dict[str, list[str]] = field(default_factory=dict)


class _Graph:
    def __init__(self, model: DagModel) -> None:
        self.order = _topological_order(model)
        self.index = {task_id: i for i, task_id in enumerate(self.order)}
        tasks = model.task_map
        self.early = model.early_tasks
        # An early task is placed as if it had no upstreams: its gate waits for them instead, and
        # opens as soon as its trigger rule is decided (an `always` task needs no gate at all).
        self.preds = [[] if t in self.early else [self.index[u] for u in tasks[t].upstream] for t in self.order]
        self.gates = {
            t: tuple(sorted(tasks[t].upstream, key=self.index.__getitem__))
            for t in self.early
            if tasks[t].trigger_rule is not TriggerRule.ALWAYS
        }
        self.ancestors = [0] * len(self.order)
        for v, ps in enumerate(self.preds):
            mask = 0
            for u in ps:
                mask |= self.ancestors[u] | (1 << u)
            self.ancestors[v] = mask


def with_groups_as_tasks(model: DagModel) -> DagModel:
    """`model` with each mapped task group standing as one task (named after the group, where its
    first task is): its edges are the edges into and out of its tasks. A group is one step of the
    plan; its tasks are planned inside it (`group_model`)."""
    if not model.map_groups:
        return model
    node = {t.task_id: t.map_group or t.task_id for t in model.tasks}
    tasks: list[TaskModel] = []
    for t in model.tasks:
        if t.map_group is None:
            tasks.append(replace(t, upstream=tuple(sorted({node[u] for u in t.upstream}))))
        elif t.task_id == model.map_groups[t.map_group][0]:
            members = [model.task_map[m] for m in model.map_groups[t.map_group]]
            outside = {node[u] for m in members for u in m.upstream if node[u] != t.map_group}
            tasks.append(TaskModel(t.map_group, tuple(sorted(outside)), t.line, mapped=True, map_group=t.map_group))
    return replace(model, tasks=tuple(tasks))


def group_model(model: DagModel, group_id: str) -> DagModel:
    """The tasks of mapped task group `group_id` alone, with their edges inside it."""
    members = set(model.map_groups[group_id])
    tasks = tuple(
        replace(t, upstream=tuple(u for u in t.upstream if u in members)) for t in model.tasks if t.task_id in members
    )
    return replace(model, tasks=tasks)


def build_plan(model: DagModel, gate_every_task: bool = False) -> Plan:
    """Decompose the DAG; deterministic for a given model. `gate_every_task` plans the whole DAG as
    one gated set instead (tests check that both paths decide every task alike)."""
    graph = _Graph(model)
    signals: dict[str, list[str]] = {}
    everything = list(range(len(graph.order)))
    root = _gated_set(graph, everything, signals) if gate_every_task else _decompose(graph, everything, signals)
    root = _with_early_gates(root, graph, signals)
    for downstream in signals.values():
        downstream.sort(key=graph.index.__getitem__)
    return Plan(root=root, signals=signals)


def _with_early_gates(block: Block, g: _Graph, signals: dict[str, list[str]]) -> Block:
    """`block` with each early task's Step gated on all its upstreams (which signal it)."""
    if isinstance(block, Step):
        gate = g.gates.get(block.task_id)
        if not gate:
            return block
        for upstream in gate:
            signals.setdefault(upstream, []).append(block.task_id)
        return Step(block.task_id, gate)
    items = tuple(
        _with_early_gates(item, g, signals) for item in (block.items if isinstance(block, Sequence) else block.branches)
    )
    return Sequence(items) if isinstance(block, Sequence) else Parallel(items)


def _decompose(g: _Graph, nodes: list[int], signals: dict[str, list[str]]) -> Block:
    """`nodes` is sorted topologically; every upstream outside it is done before it starts."""
    if len(nodes) == 1:
        return Step(g.order[nodes[0]])
    components = _weak_components(g, nodes)
    if len(components) > 1:
        return Parallel(tuple(_decompose(g, c, signals) for c in components))
    segments = _series_segments(g, nodes)
    if len(segments) > 1:
        items: list[Block] = []
        for segment in segments:
            block = _decompose(g, segment, signals)
            items.extend(block.items if isinstance(block, Sequence) else (block,))
        return Sequence(tuple(items))
    return _gated_set(g, nodes, signals)


def _weak_components(g: _Graph, nodes: list[int]) -> list[list[int]]:
    members = set(nodes)
    parent = {v: v for v in nodes}

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for v in nodes:
        for u in g.preds[v]:
            if u in members:
                ru, rv = find(u), find(v)
                if ru != rv:
                    parent[max(ru, rv)] = min(ru, rv)
    groups: dict[int, list[int]] = {}
    for v in nodes:
        groups.setdefault(find(v), []).append(v)
    return list(groups.values())


def _series_segments(g: _Graph, nodes: list[int]) -> list[list[int]]:
    """Cut `nodes` where everything after the cut depends on everything before it.

    A cut before position k is valid iff no node at or after k has a non-ancestor before k. For each
    node, `first_stranger` is the position of the earliest earlier node it does not depend on.
    """
    first_stranger: list[int] = []
    prefix = 0
    for pos, v in enumerate(nodes):
        strangers = prefix & ~g.ancestors[v]
        if strangers:
            lowest_bit = (strangers & -strangers).bit_length() - 1
            first_stranger.append(_position(nodes, lowest_bit))
        else:
            first_stranger.append(pos)
        prefix |= 1 << v
    cuts: list[int] = []
    running_min = len(nodes)
    for k in range(len(nodes) - 1, 0, -1):
        running_min = min(running_min, first_stranger[k])
        if running_min >= k:
            cuts.append(k)
    cuts.reverse()
    bounds = [0, *cuts, len(nodes)]
    return [nodes[a:b] for a, b in zip(bounds, bounds[1:])]


def _position(nodes: list[int], value: int) -> int:
    from bisect import bisect_left

    return bisect_left(nodes, value)


def _gated_set(g: _Graph, nodes: list[int], signals: dict[str, list[str]]) -> Block:
    """Run every task of a non-series-parallel part in parallel, each gated on its upstreams in it."""
    members = set(nodes)
    steps: list[Block] = []
    for v in nodes:
        gate = [u for u in sorted(g.preds[v]) if u in members]
        for u in gate:
            signals.setdefault(g.order[u], []).append(g.order[v])
        steps.append(Step(g.order[v], tuple(g.order[u] for u in gate)))
    return Parallel(tuple(steps))


def _topological_order(model: DagModel) -> list[str]:
    """Kahn's algorithm, ties broken by definition order so the plan is deterministic."""
    import heapq

    position = {t.task_id: i for i, t in enumerate(model.tasks)}
    indegree = {t.task_id: len(t.upstream) for t in model.tasks}
    downstream = model.downstream()
    ready = [position[t] for t, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        task_id = model.tasks[heapq.heappop(ready)].task_id
        order.append(task_id)
        for d in downstream[task_id]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, position[d])
    if len(order) != len(model.tasks):
        raise ValueError(f"DAG {model.dag_id!r} has a cycle")
    return order
