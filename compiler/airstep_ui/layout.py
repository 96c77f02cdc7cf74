"""A DAG laid out left to right in layers (Sugiyama's method, kept simple so 1,000 tasks take well
under a second): each task in the layer after its deepest upstream, long edges bent through
placeholders in the layers they cross, layers ordered by the barycentre of their neighbours (a
task group's members side by side), then each layer's tasks moved towards their neighbours without
changing their order or overlapping (pool-adjacent-violators)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

NODE_WIDTH = 180
NODE_HEIGHT = 30
LAYER_GAP = 70  # between a layer's tasks and the next layer's
ROW_GAP = 12
SWEEPS = 4


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float


@dataclass(slots=True)
class Layout:
    """Where each task's box goes (its top left corner), and each edge's path (start to end)."""

    boxes: dict[str, Point] = field(default_factory=dict)
    edges: dict[tuple[str, str], list[Point]] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0


@dataclass(frozen=True, slots=True)
class _Via:
    """A placeholder where a long edge crosses a layer."""

    edge: tuple[str, str]
    layer: int


Node = str | _Via


def layered(tasks: list[str], edges: list[tuple[str, str]], groups: dict[str, str] | None = None) -> Layout:
    """Lay out `tasks` (in a topological order is best, any order works) joined by `edges`
    (upstream, downstream); `groups` puts a task's group members next to each other."""
    group_of = groups or {}
    layers, ranks, up, down = _layers(tasks, edges)
    position = {node: i for layer in layers for i, node in enumerate(layer)}

    def group(node: Node) -> str:
        return group_of.get(node.edge[0] if isinstance(node, _Via) else node, "")

    def order(layer: list[Node], neighbours: dict[Node, list[Node]]) -> None:
        centre = {
            n: sum(position[m] for m in neighbours[n]) / len(neighbours[n]) if neighbours[n] else position[n]
            for n in layer
        }
        by_group: dict[str, list[float]] = defaultdict(list)
        for n in layer:
            by_group[group(n)].append(centre[n])
        group_centre = {g: sum(c) / len(c) for g, c in by_group.items()}
        layer.sort(key=lambda n: (group_centre[group(n)], group(n), centre[n]))
        for i, n in enumerate(layer):
            position[n] = i

    for _ in range(SWEEPS):
        for layer in layers[1:]:
            order(layer, up)
        for layer in reversed(layers[:-1]):
            order(layer, down)
    y = _rows(layers, up, down)
    layout = Layout()
    for rank, layer in enumerate(layers):
        for node in layer:
            if isinstance(node, str):
                layout.boxes[node] = Point(rank * (NODE_WIDTH + LAYER_GAP), y[node])
    middle = NODE_HEIGHT / 2
    for upstream, downstream in edges:
        start = layout.boxes[upstream]
        points = [Point(start.x + NODE_WIDTH, start.y + middle)]
        for rank in range(ranks[upstream] + 1, ranks[downstream]):
            via = y[_Via((upstream, downstream), rank)]
            points.append(Point(rank * (NODE_WIDTH + LAYER_GAP) + NODE_WIDTH / 2, via + middle))
        end = layout.boxes[downstream]
        points.append(Point(end.x, end.y + middle))
        layout.edges[(upstream, downstream)] = points
    if layout.boxes:
        layout.width = max(p.x for p in layout.boxes.values()) + NODE_WIDTH
        layout.height = max(p.y for p in layout.boxes.values()) + NODE_HEIGHT
    return layout


def _layers(
    tasks: list[str], edges: list[tuple[str, str]]
) -> tuple[list[list[Node]], dict[str, int], dict[Node, list[Node]], dict[Node, list[Node]]]:
    """Longest-path layers (a task one after its deepest upstream), with placeholders on long edges."""
    upstream: dict[str, list[str]] = defaultdict(list)
    downstream: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        downstream[a].append(b)
        upstream[b].append(a)
    waiting = {t: len(upstream[t]) for t in tasks}
    ordered = [t for t in tasks if waiting[t] == 0]
    for task in ordered:  # grows while it is walked: Kahn's order
        for after in downstream[task]:
            waiting[after] -= 1
            if waiting[after] == 0:
                ordered.append(after)
    ranks: dict[str, int] = {}
    for task in ordered:
        ranks[task] = max((ranks[u] + 1 for u in upstream[task]), default=0)
    layers: list[list[Node]] = [[] for _ in range(max(ranks.values(), default=-1) + 1)]
    for task in ordered:
        layers[ranks[task]].append(task)
    up: dict[Node, list[Node]] = defaultdict(list)
    down: dict[Node, list[Node]] = defaultdict(list)
    for a, b in edges:
        previous: Node = a
        for rank in range(ranks[a] + 1, ranks[b]):
            via = _Via((a, b), rank)
            layers[rank].append(via)
            down[previous].append(via)
            up[via].append(previous)
            previous = via
        down[previous].append(b)
        up[b].append(previous)
    return layers, ranks, up, down


def _rows(layers: list[list[Node]], up: dict[Node, list[Node]], down: dict[Node, list[Node]]) -> dict[Node, float]:
    """Each node's y: its layer's order kept, spaced a row apart, as near its neighbours' as can be."""
    step = NODE_HEIGHT + ROW_GAP
    y: dict[Node, float] = {node: i * step for layer in layers for i, node in enumerate(layer)}

    def place(layer: list[Node], neighbours: dict[Node, list[Node]]) -> None:
        wanted = [
            (sum(y[m] for m in neighbours[n]) / len(neighbours[n]) if neighbours[n] else y[n]) - i * step
            for i, n in enumerate(layer)
        ]
        blocks: list[list[float]] = []  # [sum, count]: the isotonic fit of what each node wants
        for value in wanted:
            blocks.append([value, 1])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
                total, count = blocks.pop()
                blocks[-1][0] += total
                blocks[-1][1] += count
        i = 0
        for total, count in blocks:
            for _ in range(int(count)):
                y[layer[i]] = total / count + i * step
                i += 1

    for _ in range(3):
        for layer in layers[1:]:
            place(layer, up)
        for layer in reversed(layers[:-1]):
            place(layer, down)
    top = min(y.values(), default=0.0)
    return {node: value - top for node, value in y.items()}
