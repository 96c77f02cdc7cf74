"""The UI's pictures, drawn as SVG on the server: a run's graph (left to right, coloured by state,
task groups as boxes) and its Gantt chart (each task instance's latest try on a time axis)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape

from airstep.model import DagModel
from airstep.runtime.store import TaskInstance
from airstep.states import RunState, TaskState
from airstep_ui.layout import NODE_HEIGHT, NODE_WIDTH, layered

# Airflow's state colours ("none": no try yet)
STATE_COLOURS = {
    TaskState.SUCCESS.value: "#008000",
    TaskState.RUNNING.value: "#00d000",
    TaskState.FAILED.value: "#e00000",
    TaskState.UPSTREAM_FAILED.value: "#ffa500",
    TaskState.SKIPPED.value: "#ff69b4",
    TaskState.UP_FOR_RETRY.value: "#ffd700",
    TaskState.UP_FOR_RESCHEDULE.value: "#40e0d0",
    RunState.QUEUED.value: "#808080",  # a run waiting for a slot (max_active_runs)
    "none": "#ffffff",
}
FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="12"'  # named: a PNG renderer has no default
MARGIN = 24
GROUP_PAD = 10
GROUP_LABEL = 14
# a mapped task's state: the first of these its instances are in (Airflow's grid summary)
STATE_PRIORITY = tuple(
    state.value
    for state in (
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
        TaskState.UP_FOR_RETRY,
        TaskState.UP_FOR_RESCHEDULE,
        TaskState.RUNNING,
        TaskState.SUCCESS,
        TaskState.SKIPPED,
    )
)
GANTT_ROW = 22
GANTT_LABEL = 220
GANTT_WIDTH = 900


def task_states(instances: list[TaskInstance]) -> dict[str, tuple[str, int]]:
    """Each task's state (a mapped task's, summarised) and how many instances it has."""
    by_task: dict[str, list[str]] = defaultdict(list)
    for instance in instances:
        by_task[instance.task_id].append(instance.state.value if instance.state else "none")
    return {task: (summary(states), len(states)) for task, states in by_task.items()}


def summary(states: list[str]) -> str:
    return next((s for s in STATE_PRIORITY if s in states), "none")


def graph_svg(model: DagModel, instances: list[TaskInstance]) -> str:
    """The DAG's tasks as boxes coloured by their state in the run, edges as arrows."""
    states = task_states(instances)
    tasks = [t.task_id for t in model.tasks]
    edges = sorted((u, t.task_id) for t in model.tasks for u in t.upstream)
    groups = {t.task_id: t.task_group or "" for t in model.tasks}
    layout = layered(tasks, edges, groups)
    depth = _group_depth(model)
    top = GROUP_PAD + GROUP_LABEL * (max(depth.values(), default=0) + 1)
    width, height = layout.width + 2 * MARGIN, layout.height + 2 * MARGIN + 2 * top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" {FONT} width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="{-MARGIN:.0f} {-MARGIN - top:.0f} {width:.0f} {height:.0f}" role="img" aria-label="graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>',
    ]
    members: dict[str, list[str]] = defaultdict(list)
    for task in model.tasks:
        group = task.task_group
        while group:
            members[group].append(task.task_id)
            group = next((parent for g, parent, _ in model.task_groups if g == group), None)
    for group, ids in sorted(members.items(), key=lambda item: depth.get(item[0], 0)):
        xs = [layout.boxes[t].x for t in ids]
        ys = [layout.boxes[t].y for t in ids]
        pad = GROUP_PAD * (1 + max(depth.values(), default=0) - depth.get(group, 0))
        x0, y0 = min(xs) - pad, min(ys) - pad - GROUP_LABEL
        x1, y1 = max(xs) + NODE_WIDTH + pad, max(ys) + NODE_HEIGHT + pad
        parts.append(
            f'<g class="group" data-group-id="{escape(group)}"><rect fill="#e8f1fb" fill-opacity=".5" stroke="#8ab4e8" '
            f'x="{x0:.0f}" y="{y0:.0f}" '
            f'width="{x1 - x0:.0f}" height="{y1 - y0:.0f}" rx="8"/>'
            f'<text fill="#1d5fa8" x="{x0 + 8:.0f}" y="{y0 + 12:.0f}">{escape(group)}</text></g>'
        )
    for (upstream, downstream), points in layout.edges.items():
        path = " L ".join(f"{p.x:.0f} {p.y:.0f}" for p in points)
        parts.append(
            f'<path class="edge" data-from="{escape(upstream)}" data-to="{escape(downstream)}" '
            f'fill="none" stroke="#888" d="M {path}" '
            'marker-end="url(#arrow)"/>'
        )
    for task in model.tasks:
        box = layout.boxes[task.task_id]
        state, count = states.get(task.task_id, ("none", 0))
        label = task.task_id.rsplit(".", 1)[-1] if task.task_group else task.task_id
        if task.mapped:
            label += f" [{count}]" if count else " [ ]"  # its instances in the run; none drawn yet
        shown = label if len(label) <= 26 else label[:25] + "…"
        parts.append(
            f'<g class="task state-{state}" data-task-id="{escape(task.task_id)}" data-state="{state}">'
            f"<title>{escape(task.task_id)}: {state}</title>"
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="5" fill="white" '
            f'stroke="{STATE_COLOURS.get(state, "#bbb") if state != "none" else "#bbb"}" stroke-width="3"/>'
            f'<text x="{box.x + 8:.0f}" y="{box.y + 19:.0f}">{escape(shown)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def gantt_svg(instances: list[TaskInstance]) -> str:
    """Each task instance's latest try as a bar from its start to its end (or now), in start order."""
    timed = sorted((i for i in instances if i.start), key=lambda i: (i.start or "", i.task_id, i.map_index))
    if not timed:
        nothing = '<text x="8" y="20">no task has started</text>'
        return f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="400" height="30">{nothing}</svg>'
    starts = [_time(i.start) for i in timed]
    ends = [_time(i.end) if i.end else _time(i.start) for i in timed]
    origin, last = min(starts), max(ends)
    span = max((last - origin).total_seconds(), 0.001)
    height = GANTT_ROW * (len(timed) + 1) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="{GANTT_LABEL + GANTT_WIDTH + 20}" '
        f'height="{height}" role="img" aria-label="gantt">'
    ]
    for tick in range(5):
        x = GANTT_LABEL + GANTT_WIDTH * tick / 4
        anchor = ' text-anchor="end"' if tick == 4 else ""  # the last label ends at its line
        parts.append(
            f'<line class="tick" x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{height}"/>'
            f'<text class="tick" x="{x + (-3 if tick == 4 else 3):.0f}" y="12"{anchor}>+{span * tick / 4:.2f}s</text>'
        )
    for row, (instance, start, end) in enumerate(zip(timed, starts, ends, strict=True), 1):
        y = row * GANTT_ROW
        x = GANTT_LABEL + GANTT_WIDTH * (start - origin).total_seconds() / span
        bar = max(GANTT_WIDTH * (end - start).total_seconds() / span, 2)
        state = instance.state.value if instance.state else "none"
        label = instance.label
        parts.append(
            f'<g class="bar state-{state}" data-task-id="{escape(instance.task_id)}" '
            f'data-map-index="{instance.map_index}" data-state="{state}">'
            f"<title>{escape(label)}: {state}, try {instance.try_number}, {instance.start} to {instance.end}</title>"
            f'<text x="4" y="{y + 15}">{escape(label if len(label) <= 32 else label[:31] + "…")}</text>'
            f'<rect x="{x:.1f}" y="{y + 4}" width="{bar:.1f}" height="{GANTT_ROW - 8}" rx="3"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _group_depth(model: DagModel) -> dict[str, int]:
    parents = {g: parent for g, parent, _ in model.task_groups}
    depth = {}
    for group in parents:
        level, current = 0, parents[group]
        while current:
            level, current = level + 1, parents.get(current)
        depth[group] = level
    return depth


def _time(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)
