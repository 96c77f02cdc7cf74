"""The UI's data, as the pages and `/api/...` give it: plain dicts of JSON values, built from the
records (airstep_ui.records). Each function raises NotFound for a DAG or run that is not there."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from airstep.runtime.store import DagRecord, RunRecord
from airstep_cli.audit import row as audit_row
from airstep_cli.errors import UserError
from airstep_cli.logs import choose_try
from airstep_cli.prices import price
from airstep_ui.pictures import task_states
from airstep_ui.records import Records

RUNS_IN_GRID = 25
MAX_LOG_CHARS = 2_000_000  # of a try's log, in a page (`airstep logs` prints it whole)
LATEST_RUNS = 5
AUDIT_IN_PAGE = 50  # a page's newest audit records, of the last AUDIT_WINDOW (`airstep audit` lists them all)
AUDIT_WINDOW = timedelta(days=90)


class NotFound(LookupError):
    """What was asked for does not exist: the page says which."""


def dags(records: Records) -> dict[str, Any]:
    """Every DAG (not removed) with its schedule, pause, latest runs; and the import errors."""
    listed = []
    for dag in records.dags():
        if dag.removed:
            continue
        latest = records.runs(dag.dag_id, LATEST_RUNS)
        listed.append(
            {
                "dag_id": dag.dag_id,
                "schedule": _schedule(dag),
                "paused": dag.paused,
                "file": dag.file,
                "tasks": dag.tasks,
                "tags": dag.tags,
                "latest_runs": [{"run_id": r.run_id, "state": r.state.value, "start": r.start_date} for r in latest],
            }
        )
    errors = [
        {"file": e.file, "line": problem.get("line"), "message": problem.get("message")}
        for e in records.import_errors()
        for problem in e.errors
    ]
    return {"dags": listed, "import_errors": errors}


def dag(records: Records, dag_id: str) -> dict[str, Any]:
    """A DAG, its tasks (with their groups) and its newest runs with each task's state: the grid."""
    found = _dag(records, dag_id)
    model = records.model(found)
    runs = records.runs(dag_id, RUNS_IN_GRID)
    grid = []
    for run in runs:
        states = task_states(records.instances(dag_id, run.run_id))
        grid.append(
            {
                **_run(run),
                "tasks": {task: {"state": state, "instances": count} for task, (state, count) in states.items()},
            }
        )
    if model is not None:
        tasks = [
            {"task_id": t.task_id, "group": t.task_group, "mapped": t.mapped, "upstream": list(t.upstream)}
            for t in model.tasks
        ]
    else:  # a DAG whose model is not at hand: the tasks its runs had
        seen = sorted({task for entry in grid for task in entry["tasks"]})
        tasks = [{"task_id": t, "group": None, "mapped": False, "upstream": []} for t in seen]
    groups = [{"group_id": g, "parent": p, "tooltip": tip} for g, p, tip in (model.task_groups if model else ())]
    return {
        "dag_id": dag_id,
        "schedule": _schedule(found),
        "paused": found.paused,
        "file": found.file,
        "params": found.params,
        "tasks": tasks,
        "task_groups": groups,
        "runs": grid,
        **_audit(records, dag_id),
    }


def params(records: Records, dag_id: str) -> list[dict[str, Any]]:
    """The DAG's params as its trigger form asks for them: name, default, schema, and the kind of
    value its field takes (string, integer, number, boolean, array, object)."""
    found = _dag(records, dag_id)
    schemas = dict(found.param_schemas)
    names = list(dict.fromkeys([*schemas, *found.params]))
    return [
        {
            "name": n,
            "default": found.params.get(n),
            "schema": schemas.get(n, {}),
            "kind": _kind(schemas.get(n, {}), found.params.get(n)),
        }
        for n in names
    ]


def conf_from_form(fields: list[dict[str, Any]], form: dict[str, str]) -> dict[str, Any]:
    """A trigger form's values as the run's conf: each field read as its param's type says (a value
    that is not of that type is kept as written, for the params' validation to refuse by name)."""
    conf: dict[str, Any] = {}
    for field in fields:
        name, kind, schema = field["name"], field["kind"], field["schema"]
        if "enum" in schema and name in form:  # the option chosen, as the value it shows
            conf[name] = next((v for v in schema["enum"] if as_text(v) == form[name]), form[name])
            continue
        if kind == "boolean":
            conf[name] = form.get(name) == "on"
            continue
        if name not in form or (form[name] == "" and kind != "string"):
            continue  # left empty: the param's default, or its validation's "required"
        conf[name] = _typed(form[name], kind)
    return conf


def trigger(records: Records, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    """Start a run of the DAG with `conf`, once the DAG's params accept it (ParamValidationError
    names the first they refuse)."""
    from airstep.sdk.param import resolve_params

    found = _dag(records, dag_id)
    resolve_params(found.params, dict(found.param_schemas), conf)
    return records.trigger(found, conf)


def run(records: Records, dag_id: str, run_id: str) -> dict[str, Any]:
    """A run, what it used and cost, and every task instance of it (each instance's latest try)."""
    found = _run_record(records, dag_id, run_id)
    instances = records.instances(dag_id, run_id, with_tries=True)
    instances.sort(key=lambda t: (t.start or "~", t.task_id, t.map_index))
    usage = found.usage(records.lambda_usage(found))
    cost = {"usage": usage, "cost": price(usage, records.pricing_region).to_dict()}
    deadlines = [d.to_dict() for d in records.deadlines(found)]
    changes = _audit(records, dag_id, run_id)
    tasks = [i.to_dict() for i in instances]
    return {**_run(found), **cost, "deadlines": deadlines, "tasks": tasks, **changes}


def log(
    records: Records, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int | None
) -> dict[str, Any]:
    """A try's log (the instance's latest try unless `try_number`)."""
    found = _run_record(records, dag_id, run_id)
    try:
        key, tries = choose_try(records.instances(dag_id, run_id), found, task_id, map_index, try_number)
    except UserError as exc:
        raise NotFound(" ".join(exc.lines)) from None
    text = records.log(found, key)
    if text is not None and len(text) > MAX_LOG_CHARS:  # its end: where a failure's traceback is
        text = f"[the first {len(text) - MAX_LOG_CHARS:,} characters are left out]\n" + text[-MAX_LOG_CHARS:]
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "try_number": key.try_number,
        "tries": tries,
        "log": text,
    }


def _audit(records: Records, dag_id: str, run_id: str | None = None) -> dict[str, Any]:
    """The newest audit records of the DAG (of the run), or why they cannot be read (the page shows
    the rest: a viewer may not be allowed to read the audit log group)."""
    try:
        found = records.audit(dag_id, datetime.now(UTC) - AUDIT_WINDOW)
    except Exception as exc:  # noqa: BLE001 - any failure to read them is said on the page, nothing more
        return {"audit": [], "audit_error": f"the audit records cannot be read: {exc}"}
    chosen = [r for r in reversed(found) if run_id in (None, r.run_id)]
    return {"audit": [audit_row(r) for r in chosen[:AUDIT_IN_PAGE]], "audit_error": None}


def _dag(records: Records, dag_id: str) -> DagRecord:
    found = next((d for d in records.dags() if d.dag_id == dag_id), None)
    if found is None:
        raise NotFound(f"no DAG {dag_id!r}")
    return found


def _run_record(records: Records, dag_id: str, run_id: str) -> RunRecord:
    _dag(records, dag_id)
    found = records.run(dag_id, run_id)
    if found is None:
        raise NotFound(f"no run {run_id!r} of {dag_id!r}")
    return found


def _run(run: RunRecord) -> dict[str, Any]:
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state.value,
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "start": run.start_date,
        "end": run.end_date,
        "duration": run.duration,
        "triggered_by": run.triggered_by,
        "error": run.error,
    }


def _schedule(dag: DagRecord) -> str | None:
    return dag.schedule.describe() if dag.schedule is not None else None


def _kind(schema: dict[str, Any], default: Any) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):  # ["null", "integer"]: the type that is not null
        declared = next((t for t in declared if t != "null"), None)
    if declared in ("string", "integer", "number", "boolean", "array", "object"):
        return str(declared)
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, (int, float)):
        return "number"
    return "string" if default is None or isinstance(default, str) else "object"


def _typed(text: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind in ("array", "object"):
            return json.loads(text)
    except ValueError:
        return text
    return text


def as_text(value: Any) -> str:
    """A param's value as its form field shows it."""
    return value if isinstance(value, str) else json.dumps(value)
