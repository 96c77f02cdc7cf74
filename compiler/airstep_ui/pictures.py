"""The UI's pictures, drawn as SVG on the server: a run's graph (left to right, coloured by state,
task groups as boxes) and its Gantt chart (each try of each task instance on a time axis)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
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
QUEUED = RunState.QUEUED.value  # a Gantt row's wait before its first try (the other wait: "waiting", for a retry)
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


def gantt_svg(instances: list[TaskInstance], model: DagModel | None = None, run_start: str | None = None) -> str:
    """Each task instance as a row, in start order: every try a bar from its start to its end (or
    now) in its state's colour, the wait for a retry between two tries, and before the first try the
    time it was queued: since it could run (its upstream tasks' ends, or the run's start; known with
    the DAG's `model`)."""
    timed = sorted((i for i in instances if i.start), key=lambda i: (_first_start(i), i.task_id, i.map_index))
    if not timed:
        nothing = '<text x="8" y="20">no task has started</text>'
        return f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="400" height="30">{nothing}</svg>'
    rows = [(instance, _tries(instance)) for instance in timed]
    moments = [_time(moment) for _, tries in rows for t in tries for moment in (t.start, t.end) if moment]
    origin, last = min(moments), max(moments)
    ready = _ready_times(instances, model, run_start)
    origin = min([origin, *(r for i in timed if (r := ready.get(i.label)) is not None)])
    span = max((last - origin).total_seconds(), 0.001)

    def x(moment: datetime) -> float:
        return GANTT_LABEL + GANTT_WIDTH * (moment - origin).total_seconds() / span

    height = GANTT_ROW * (len(timed) + 1) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="{GANTT_LABEL + GANTT_WIDTH + 20}" '
        f'height="{height}" role="img" aria-label="gantt">'
    ]
    for tick in range(5):
        tick_x = GANTT_LABEL + GANTT_WIDTH * tick / 4
        anchor = ' text-anchor="end"' if tick == 4 else ""  # the last label ends at its line
        parts.append(
            f'<line class="tick" x1="{tick_x:.0f}" y1="0" x2="{tick_x:.0f}" y2="{height}"/>'
            f'<text class="tick" x="{tick_x + (-3 if tick == 4 else 3):.0f}" y="12"{anchor}>'
            f"+{span * tick / 4:.2f}s</text>"
        )
    for row, (instance, tries) in enumerate(rows, 1):
        y = row * GANTT_ROW
        state = instance.state.value if instance.state else "none"
        label = instance.label
        parts.append(
            f'<g class="bar state-{state}" data-task-id="{escape(instance.task_id)}" '
            f'data-map-index="{instance.map_index}" data-state="{state}">'
            f'<text x="4" y="{y + 15}">{escape(label if len(label) <= 32 else label[:31] + "…")}</text>'
        )
        queued_from = ready.get(label)
        first = _time(tries[0].start)
        if queued_from is not None and queued_from < first:
            title = f"{label}: {QUEUED} {_seconds(queued_from, first)}"
            parts.append(_segment(QUEUED, x(queued_from), x(first), y, title))
        for before, after in zip(tries, tries[1:], strict=False):
            if before.end and before.end < after.start:
                waited = _time(before.end), _time(after.start)
                title = f"{label}: up_for_retry {_seconds(*waited)} before try {after.try_number}"
                parts.append(_segment("waiting", x(waited[0]), x(waited[1]), y, title))
        for ended in tries:
            began, until = _time(ended.start), _time(ended.end) if ended.end else last
            title = f"{label} try {ended.try_number}: {ended.state}, {ended.start} to {ended.end or 'now'}"
            parts.append(
                f'<rect class="try state-{ended.state}" data-try="{ended.try_number}" x="{x(began):.1f}" '
                f'fill="{STATE_COLOURS.get(ended.state, "#bbb")}" '
                f'y="{y + 4}" width="{max(x(until) - x(began), 2):.1f}" height="{GANTT_ROW - 8}" rx="3">'
                f"<title>{escape(title)} ({_seconds(began, until)})</title></rect>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Try:
    try_number: int
    state: str
    start: str
    end: str | None


def _tries(instance: TaskInstance) -> list[_Try]:
    """The instance's tries that have a start: those its history kept, and its latest (running, or
    ended before histories were kept) when the history does not have it."""
    tries = [_Try(t.try_number, t.state.value, t.start, t.end) for t in instance.tries]
    latest = instance.state.value if instance.state else "none"
    if instance.start and instance.try_number not in {t.try_number for t in tries} and instance.try_number > 0:
        end = instance.end if instance.end and instance.end >= instance.start else None  # (an earlier try's)
        tries.append(_Try(instance.try_number, latest, instance.start, end))
    return tries or [_Try(instance.try_number, latest, instance.start or "", instance.end)]


def _first_start(instance: TaskInstance) -> str:
    return instance.tries[0].start if instance.tries else instance.start or ""


def _ready_times(instances: list[TaskInstance], model: DagModel | None, run_start: str | None) -> dict[str, datetime]:
    """When each instance could first run: its upstream tasks' last end (in a mapped task group, the
    upstream instance at its own map index), or the run's start for a task with no upstream."""
    if model is None:
        return {}
    ends: dict[tuple[str, int], list[datetime]] = defaultdict(list)
    for instance in instances:
        if instance.end:
            ends[instance.task_id, -1].append(_time(instance.end))
            ends[instance.task_id, instance.map_index].append(_time(instance.end))
    ready = {}
    for instance in instances:
        task = model.task_map.get(instance.task_id)
        if task is None:
            continue
        moments = [_time(run_start)] if run_start and not task.upstream else []
        for upstream in task.upstream:
            same_group = task.map_group is not None and model.task_map[upstream].map_group == task.map_group
            found = ends.get((upstream, instance.map_index if same_group else -1))
            if not found:  # an upstream not ended (a clear kept it running): unknown
                moments = []
                break
            moments.append(max(found))
        if moments:
            ready[instance.label] = max(moments)
    return ready


def _segment(kind: str, left: float, right: float, y: int, title: str) -> str:
    """A wait before a try: queued (grey) or for a retry (up_for_retry's colour), paler than a try."""
    colour = STATE_COLOURS[QUEUED if kind == QUEUED else TaskState.UP_FOR_RETRY.value]
    return (
        f'<rect class="{kind}" x="{left:.1f}" y="{y + 8}" width="{max(right - left, 1):.1f}" '
        f'height="{GANTT_ROW - 16}" fill="{colour}" fill-opacity="0.45"><title>{escape(title)}</title></rect>'
    )


def _seconds(start: datetime, end: datetime) -> str:
    return f"{(end - start).total_seconds():.2f}s"


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
