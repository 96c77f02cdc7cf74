"""Assets locally: the DAGs of a producer's folder that are scheduled on assets (its consumers),
`airstep run --with-consumers` (the runs its asset events trigger, and theirs, on the same engine),
and `airstep assets list`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from airstep.model import DagModel
from airstep.runtime import assets
from airstep.runtime.store.assets import Consumer
from airstep.sandbox import ParsedFile, parse_dag_file
from airstep_cli.dagfiles import expand_paths, source_of
from airstep_cli.metadata import LOCAL_STATE
from airstep_cli.output import err, print_rows

MAX_TRIGGERED_RUNS = 100  # runs one `airstep run --with-consumers` starts (a cycle of assets stops there)


@dataclass(frozen=True)
class FolderDag:
    """A DAG of the folder, with the file it came from."""

    model: DagModel
    parsed: ParsedFile


def folder_dags(folder: Path, known: ParsedFile | None = None) -> list[FolderDag]:
    """Every DAG the folder's files define (`known`: a file parsed already). A broken file is
    skipped, saying so: it consumes nothing until it loads."""
    found = []
    for path in expand_paths([str(folder)]):
        same = known is not None and Path(known.file).resolve() == path.resolve()
        parsed = known if same and known is not None else parse_dag_file(path, uri=str(path))
        for error in parsed.errors:
            err.print(f"[yellow]skipped[/yellow] {error}")
        found += [FolderDag(DagModel.from_json(m), parsed) for m in parsed.models]
    return found


def consumers(dags: list[FolderDag]) -> list[Consumer]:
    return [consumer for dag in dags if (consumer := assets.consumer_of(dag.model)) is not None]


def updates_assets(model: DagModel) -> bool:
    return any(task.outlets for task in model.tasks)


def run_consumers(engine: Any, dags: list[FolderDag], run_one: Any) -> list[Any]:
    """Start the runs the recorded asset events trigger, until none is due (their own events may
    trigger more); `run_one(model, source, dag_run)` runs one and returns its result."""
    by_id = {dag.model.dag_id: dag for dag in dags}
    results: list[Any] = []
    while len(results) < MAX_TRIGGERED_RUNS:
        before = len(results)
        for consumer in consumers(dags):  # each claimed just before it runs
            run = assets.triggered_run(engine.store, consumer)
            if run is not None:
                dag = by_id[consumer.dag_id]
                results.append(run_one(dag.model, source_of(dag.parsed), run))
            if len(results) >= MAX_TRIGGERED_RUNS:
                break
        if len(results) == before:
            return results
    err.print(f"[yellow]stopped after {MAX_TRIGGERED_RUNS} asset-triggered runs[/yellow] (do the assets form a cycle?)")
    return results


def assets_list(
    folder: Annotated[Path, typer.Argument(help="the folder of DAG files (default: here)")] = Path(),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """The assets the folder's DAG files update (outlets) and are scheduled on, with their latest
    event in the local history."""
    dags = folder_dags(folder)
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str, uri: str) -> dict[str, Any]:
        return rows.setdefault(name, {"asset": name, "uri": uri, "producers": [], "consumers": [], "last_event": None})

    for dag in dags:
        for task in dag.model.tasks:
            for name, uri in task.outlets:
                row(name, uri)["producers"].append(f"{dag.model.dag_id}.{task.task_id}")
        consumer = assets.consumer_of(dag.model)
        for name, uri in assets.condition_assets(consumer.condition).items() if consumer else ():
            row(name, uri)["consumers"].append(dag.model.dag_id)
    if rows and LOCAL_STATE.exists():
        from airstep_local.engine import LocalEngine

        with LocalEngine(state_file=LOCAL_STATE, load_state=True) as engine:
            for name, found in rows.items():
                latest = engine.store.latest_asset_events(name)
                found["last_event"] = latest[0].to_dict() if latest else None
    listed = sorted(rows.values(), key=lambda r: r["asset"])
    if as_json:
        print(json.dumps({"assets": listed}, indent=2))
        return
    if not listed:
        print("no assets: no DAG here has outlets or an asset schedule")
        return
    print_rows(
        [
            {
                **r,
                "producers": ", ".join(r["producers"]) or "-",
                "consumers": ", ".join(r["consumers"]) or "-",
                "last_event": r["last_event"]["timestamp"] if r["last_event"] else "-",
            }
            for r in listed
        ],
        ("asset", "uri", "producers", "consumers", "last_event"),
    )
