"""Turns any DAG into a nest of sequences and parallel blocks, with gates for the edges left over.

The plan keeps every dependency and adds none: a task starts when its own upstreams are done, so a
run's makespan is the DAG's critical path. Series-parallel parts become plain Sequence/Parallel blocks;
a connected part with no series cut is split into chains of real edges, run as parallel branches, and
each edge that crosses chains becomes a *gate*: the downstream task waits on a task token that its
last gate upstream releases (see docs/design.md).

Sets of tasks are Python ints used as bitsets over topological positions, so ancestor tests are cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airstep.model import DagModel


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
        self.preds = [[self.index[u] for u in tasks[t].upstream] for t in self.order]
        self.succs: list[list[int]] = [[] for _ in self.order]
        for v, ps in enumerate(self.preds):
            for u in ps:
                self.succs[u].append(v)
        self.ancestors = [0] * len(self.order)
        for v, ps in enumerate(self.preds):
            mask = 0
            for u in ps:
                mask |= self.ancestors[u] | (1 << u)
            self.ancestors[v] = mask


def build_plan(model: DagModel) -> Plan:
    """Decompose the DAG; deterministic for a given model."""
    graph = _Graph(model)
    signals: dict[str, list[str]] = {}
    root = _decompose(graph, list(range(len(graph.order))), signals)
    for downstream in signals.values():
        downstream.sort(key=graph.index.__getitem__)
    return Plan(root=root, signals=signals)


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
    return _chains_with_gates(g, nodes, signals)


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


def _chains_with_gates(g: _Graph, nodes: list[int], signals: dict[str, list[str]]) -> Block:
    """Cover `nodes` with chains of real edges; gate each task on upstreams its chain does not order."""
    members = set(nodes)
    next_of = _maximum_chain_matching(g, nodes, members)
    has_previous = set(next_of.values())
    chains: list[list[int]] = []
    for v in nodes:
        if v in has_previous:
            continue
        chain = [v]
        while chain[-1] in next_of:
            chain.append(next_of[chain[-1]])
        chains.append(chain)
    branches: list[Block] = []
    for chain in chains:
        steps: list[Step] = []
        previous: int | None = None
        for v in chain:
            ordered = 0 if previous is None else g.ancestors[previous] | (1 << previous)
            gate = [u for u in sorted(g.preds[v]) if u in members and not ordered >> u & 1]
            for u in gate:
                signals.setdefault(g.order[u], []).append(g.order[v])
            steps.append(Step(g.order[v], tuple(g.order[u] for u in gate)))
            previous = v
        branches.append(steps[0] if len(steps) == 1 else Sequence(tuple(steps)))
    return Parallel(tuple(branches))


def _maximum_chain_matching(g: _Graph, nodes: list[int], members: set[int]) -> dict[int, int]:
    """Match each task to at most one upstream that it follows in a chain, as many as possible
    (Kuhn's augmenting paths): every unmatched task with upstreams would need a gate."""
    match_of_upstream: dict[int, int] = {}  # u -> v: v follows u in u's chain

    def candidates(v: int) -> list[int]:
        # Prefer the latest upstream: it orders the most of v's other ancestors.
        return sorted((u for u in g.preds[v] if u in members), reverse=True)

    for root in nodes:
        seen: set[int] = set()
        stack, choices, via = [root], [iter(candidates(root))], []  # len(via) == len(stack) - 1
        while stack:
            u = next((c for c in choices[-1] if c not in seen), None)
            if u is None:
                stack.pop()
                choices.pop()
                if via:
                    via.pop()
                continue
            seen.add(u)
            via.append(u)
            if u not in match_of_upstream:  # augmenting path found: flip it
                for v, chosen in zip(stack, via):
                    match_of_upstream[chosen] = v
                break
            stack.append(match_of_upstream[u])
            choices.append(iter(candidates(match_of_upstream[u])))
    return match_of_upstream


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
