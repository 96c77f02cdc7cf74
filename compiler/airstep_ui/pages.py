"""The UI's HTML pages, rendered on the server from the API's data (airstep_ui.api): no script is
needed to read them; pictures are inline SVG (airstep_ui.pictures)."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from airstep.runtime.store.deadline_alerts import MET, MISSED
from airstep.states import TaskState
from airstep_cli.audit import COLUMNS as AUDIT_COLUMNS
from airstep_cli.prices import describe as describe_cost
from airstep_ui.api import as_text
from airstep_ui.pictures import STATE_COLOURS

DEADLINE_COLOURS = {MISSED: TaskState.FAILED.value, MET: TaskState.SUCCESS.value}  # (armed: none yet)
_STATE_CSS = "".join(
    f".task.state-{state} rect {{ stroke: {colour}; }}"
    f".cell.state-{state}, .badge.state-{state} {{ background: {colour}; }}"
    for state, colour in STATE_COLOURS.items()
)
STYLE = (
    "body { font: 14px system-ui, sans-serif; margin: 0; color: #222; }"
    "header { background: #017cee; color: white; padding: 10px 20px; } header a { color: white; }"
    "main { padding: 16px 20px; } table { border-collapse: collapse; } td, th { padding: 4px 8px; text-align: left; }"
    "tr + tr td { border-top: 1px solid #eee; } .muted { color: #777; } pre.log { background: #f6f8fa;"
    " padding: 12px; overflow: auto; white-space: pre-wrap; } .picture { overflow: auto; max-height: 80vh;"
    " border: 1px solid #ddd; margin: 8px 0 20px; } .graph text, .gantt text { font: 12px system-ui, sans-serif; }"
    ".graph .task rect { fill: white; stroke-width: 3; } .graph .task text { fill: #111; }"
    ".graph .task.state-none rect { stroke: #bbb; } .graph .edge { fill: none; stroke: #888; }"
    ".graph .group rect { fill: #e8f1fb; fill-opacity: .5; stroke: #8ab4e8; } .graph .group text { fill: #1d5fa8; }"
    ".gantt line.tick { stroke: #eee; } .gantt text.tick { fill: #777; }"
    ".cell { display: inline-block; width: 14px; height: 14px;"
    " border: 1px solid #999; border-radius: 3px; } .badge { padding: 1px 6px; border-radius: 8px; color: #111;"
    " border: 1px solid #999; } .state-failed.badge, .state-success.badge { color: white; } td.grid { padding: 2px; }"
    ".error { color: #b00020; } .notice { background: #fff4e5; padding: 6px 10px; border-left: 4px solid #f0a020; }"
    "details.trigger { margin: 8px 0 16px; } " + _STATE_CSS
)


def page(title: str, body: str, crumbs: list[tuple[str, str]] | None = None) -> str:
    """A whole page: a header with where it is, then `body`."""
    trail = " / ".join(f'<a href="{href}">{escape(name)}</a>' for name, href in [("airstep", "/"), *(crumbs or [])])
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - airstep</title>'
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head>'
        f"<body><header>{trail}</header><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def dags_page(data: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-dag-id="{escape(d["dag_id"])}"><td><a href="{dag_href(d["dag_id"])}">{escape(d["dag_id"])}</a></td>'
        f"<td>{escape(d['schedule'] or 'None')}</td><td>{'paused' if d['paused'] else 'active'}</td>"
        f"<td>{''.join(_cell(r['state'], run_href(d['dag_id'], r['run_id']), r['run_id']) for r in d['latest_runs'])}"
        f"</td><td class=muted>{escape(d['file'])}</td></tr>"
        for d in data["dags"]
    )
    table = (
        "<table class=dags><tr><th>DAG</th><th>schedule</th><th></th><th>latest runs</th><th>file</th></tr>"
        f"{rows}</table>"
        if data["dags"]
        else "<p class=muted>No DAGs yet: run one with <code>airstep run DAG_FILE</code>.</p>"
    )
    errors = "".join(
        f'<li class="import-error">{escape(e["file"])}:{e["line"]}: {escape(str(e["message"]))}</li>'
        for e in data["import_errors"]
    )
    return page("DAGs", table + (f"<h2>Import errors</h2><ul class=error>{errors}</ul>" if errors else ""))


def grid_page(data: dict[str, Any], form: str = "") -> str:
    """Tasks as rows (grouped by task group, groups collapsible), runs as columns, newest first;
    above them, `form` (the trigger form)."""
    dag_id = data["dag_id"]
    runs = data["runs"]
    head = "".join(
        f'<th><a href="{run_href(dag_id, r["run_id"])}" title="{escape(r["run_id"])}">'
        f'<span class="cell state-{r["state"]}"></span></a></th>'
        for r in runs
    )

    def row(task: dict[str, Any]) -> str:
        cells = []
        for r in runs:
            entry = r["tasks"].get(task["task_id"])
            state = entry["state"] if entry else "none"
            count = f" ({entry['instances']})" if entry and task["mapped"] else ""
            title = f"{task['task_id']}: {state}{count}"
            cells.append(f"<td class=grid>{_cell(state, run_href(dag_id, r['run_id']), title)}</td>")
        name = task["task_id"].rsplit(".", 1)[-1] if task["group"] else task["task_id"]
        mapped = " <span class=muted>[ ]</span>" if task["mapped"] else ""
        return f'<tr data-task-id="{escape(task["task_id"])}"><td>{escape(name)}{mapped}</td>{"".join(cells)}</tr>'

    body = [f"<table class=grid><tr><th>task \\ run</th>{head}</tr>"]
    current: str | None = None
    for task in data["tasks"]:
        if task["group"] != current and task["group"]:
            body.append(
                f'<tr class="group-row" data-group-id="{escape(task["group"])}"><th colspan="{len(runs) + 1}">'
                f"▾ {escape(task['group'])}</th></tr>"
            )
        current = task["group"]
        body.append(row(task))
    body.append("</table>")
    summary = (
        f"<p>schedule: {escape(data['schedule'] or 'None')} · {'paused' if data['paused'] else 'active'} · "
        f"<span class=muted>{escape(data['file'])}</span></p>"
    )
    audit = audit_table(data["audit"], data["audit_error"])
    if not runs:
        return page(dag_id, summary + form + "<p class=muted>No runs yet.</p>" + audit, [(dag_id, dag_href(dag_id))])
    return page(dag_id, summary + form + "".join(body) + _GROUP_TOGGLE + audit, [(dag_id, dag_href(dag_id))])


def audit_table(rows: list[dict[str, Any]], error: str | None = None) -> str:
    """Who changed what (airstep.runtime.audit), newest first; nothing when no one has."""
    if error:
        return f"<h2>Audit</h2><p class=muted>{escape(error)}</p>"
    if not rows:
        return ""
    cells = "".join(
        "<tr class=audit-record>" + "".join(f"<td>{escape(str(r[c] or ''))}</td>" for c in AUDIT_COLUMNS) + "</tr>"
        for r in rows
    )
    head = "".join(f"<th>{c}</th>" for c in AUDIT_COLUMNS)
    return f"<h2>Audit</h2><table class=audit><tr>{head}</tr>{cells}</table>"


def trigger_form(
    dag_id: str, fields: list[dict[str, Any]], values: dict[str, str] | None = None, message: str = ""
) -> str:
    """A form that starts a run, one input per param (its type's), filled with `values` (what was
    sent) or the defaults; `message` above it (why a run was refused, or that one started)."""
    inputs = []
    for field in fields:
        name, schema, default = field["name"], field["schema"], field["default"]
        shown = values.get(name) if values is not None else None
        text = shown if shown is not None else ("" if default is None else as_text(default))
        label = escape(schema.get("title") or name)
        help_text = f" <span class=muted>{escape(schema['description'])}</span>" if schema.get("description") else ""
        attrs = f'name="{escape(name)}" id="param-{escape(name)}"'
        kind = field["kind"]
        if "enum" in schema:
            options = "".join(
                f"<option{' selected' if as_text(o) == text else ''}>{escape(as_text(o))}</option>"
                for o in schema["enum"]
            )
            control = f"<select {attrs}>{options}</select>"
        elif kind == "boolean":
            checked = (shown == "on") if values is not None else bool(default)
            control = f'<input type="checkbox" {attrs}{" checked" if checked else ""}>'
        elif kind in ("array", "object"):
            control = f"<textarea {attrs} rows=3 cols=40>{escape(text)}</textarea>"
        else:
            input_type = "number" if kind in ("integer", "number") else "text"
            step = ' step="any"' if kind == "number" else ""
            control = f'<input type="{input_type}"{step} {attrs} value="{escape(text)}">'
        inputs.append(
            f'<tr><th><label for="param-{escape(name)}">{label}</label></th><td>{control}{help_text}</td></tr>'
        )
    notice = f"<p class=notice role=status>{escape(message)}</p>" if message else ""
    return (
        f"<details class=trigger{' open' if message else ''}><summary>Trigger a run</summary>{notice}"
        f'<form method="post" action="{dag_href(dag_id)}/trigger"><table>{"".join(inputs)}</table>'
        '<button type="submit">Trigger</button></form></details>'
    )


def run_page(data: dict[str, Any], graph: str, gantt: str) -> str:
    dag_id, run_id = data["dag_id"], data["run_id"]
    facts = "".join(
        f"<tr><th>{name}</th><td>{escape(str(data[name]))}</td></tr>"
        for name in ("state", "run_type", "logical_date", "start", "end", "duration", "triggered_by", "error")
        if data[name] is not None
    )
    facts += f"<tr><th>cost</th><td class=cost>{escape(describe_cost(data['usage'], data['cost']['region']))}</td></tr>"
    for deadline in data["deadlines"]:
        name = f" {deadline['name']}" if deadline["name"] else ""
        state = DEADLINE_COLOURS.get(deadline["state"], "none")
        facts += (
            f"<tr><th>deadline{escape(name)}</th><td class=deadline>{escape(deadline['deadline'])} "
            f'<span class="badge state-{state}">{escape(deadline["state"])}</span></td></tr>'
        )
    rows = "".join(_task_row(dag_id, run_id, t) for t in data["tasks"])
    body = (
        f"<table class=facts>{facts}</table><h2>Graph</h2><div class=picture>{graph}</div>"
        f"<h2>Gantt</h2><div class=picture>{gantt}</div><h2>Task instances</h2>"
        "<table class=tasks><tr><th>task</th><th>state</th><th>tries</th><th>start</th><th>end</th><th>duration</th>"
        f"<th>logs</th><th>error</th></tr>{rows}</table>{audit_table(data['audit'], data['audit_error'])}"
    )
    return page(run_id, body, [(dag_id, dag_href(dag_id)), (run_id, run_href(dag_id, run_id))])


def _task_row(dag_id: str, run_id: str, task: dict[str, Any]) -> str:
    label = task["task_id"] + (f"[{task['map_index']}]" if task["map_index"] >= 0 else "")
    state = task["state"] or "none"
    duration = "" if task["duration"] is None else f"{task['duration']:.2f}s"
    return (
        f'<tr data-task-id="{escape(task["task_id"])}" data-map-index="{task["map_index"]}">'
        f'<td>{escape(label)}</td><td><span class="badge state-{state}">{state}</span></td>'
        f"<td>{task['try_number']}</td><td>{escape(task['start'] or '')}</td><td>{escape(task['end'] or '')}</td>"
        f"<td>{duration}</td><td>{_log_links(dag_id, run_id, task)}</td>"
        f"<td class=error>{escape(task['error'] or '')}</td></tr>"
    )


def log_page(data: dict[str, Any]) -> str:
    dag_id, run_id, task_id = data["dag_id"], data["run_id"], data["task_id"]
    label = task_id if data["map_index"] < 0 else f"{task_id}[{data['map_index']}]"
    others = " ".join(
        f'<a href="{log_href(dag_id, run_id, task_id, data["map_index"], n)}">try {n}</a>'
        for n in range(1, data["tries"] + 1)
    )
    text = data["log"]
    shown = (
        f"<pre class=log>{escape(text)}</pre>"
        if text is not None
        else "<p class=muted>It printed and logged nothing.</p>"
    )
    title = f"{label}, try {data['try_number']}"
    crumbs = [(dag_id, dag_href(dag_id)), (run_id, run_href(dag_id, run_id)), (title, "#")]
    return page(title, f"<p>{others}</p>{shown}", crumbs)


def not_found_page(message: str) -> str:
    return page("Not found", f"<p class=error>{escape(message)}</p><p><a href='/'>All DAGs</a></p>")


def dag_href(dag_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}"


def run_href(dag_id: str, run_id: str) -> str:
    return f"{dag_href(dag_id)}/runs/{quote(run_id, safe='')}"


def log_href(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    base = f"{run_href(dag_id, run_id)}/tasks/{quote(task_id, safe='')}/logs"
    return f"{base}?map_index={map_index}&try={try_number}"


def _log_links(dag_id: str, run_id: str, task: dict[str, Any]) -> str:
    return " ".join(
        f'<a class=log-link href="{log_href(dag_id, run_id, task["task_id"], task["map_index"], n)}">{n}</a>'
        for n in range(1, task["try_number"] + 1)
    )


def _cell(state: str, href: str, title: str) -> str:
    return f'<a href="{href}" title="{escape(title)}"><span class="cell state-{state}"></span></a>'


# A task group's rows fold under its header (the page reads fine without it).
_GROUP_TOGGLE = """<script>
document.querySelectorAll("tr.group-row").forEach(function (header) {
  header.style.cursor = "pointer";
  header.addEventListener("click", function () {
    var group = header.dataset.groupId, open = !header.classList.toggle("folded");
    header.querySelector("th").textContent = (open ? "\\u25be " : "\\u25b8 ") + group;
    document.querySelectorAll("tr[data-task-id]").forEach(function (row) {
      if (row.dataset.taskId.indexOf(group + ".") === 0) row.style.display = open ? "" : "none";
    });
  });
});
</script>"""
