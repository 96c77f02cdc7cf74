"""Assets locally: the DAGs of a producer's folder that are scheduled on assets (its consumers),
`airstep run --with-consumers` (the runs its asset events trigger, and theirs, on the same engine),
`airstep assets list`, and `airstep assets event` (an object landing in S3, or an event made by
hand, and the runs it triggers)."""

from __future__ import annotations

import getpass
import hashlib
import json
import sys
import urllib.parse
import uuid
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from airstep.model import DagModel
from airstep.runtime import assets
from airstep.runtime.asset_events import MAX_MESSAGE_BYTES, sqs_message
from airstep.runtime.store.assets import AssetEvent, Consumer, queue_source, queue_url, s3_location
from airstep.sandbox import ParsedFile, parse_dag_file
from airstep.states import RunState
from airstep_cli.dagfiles import expand_paths, source_of
from airstep_cli.errors import UserError
from airstep_cli.metadata import LOCAL_STATE
from airstep_cli.output import Progress, err, fail, print_rows, print_table

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


def triggers_runs(model: DagModel) -> bool:
    """Whether the DAG has a TriggerDagRunOperator (its runs start runs of the folder's DAGs)."""
    return any(task.trigger for task in model.tasks)


def deploy_triggerable(engine: Any, dags: list[FolderDag], fast_retries: bool) -> bool:
    """When a DAG of the folder may trigger runs, deploy the folder's DAGs on the engine (as
    compile-dags deploys a folder), so that the runs it triggers run here; whether it did."""
    from airstep_local.engine import RunRequest

    if not any(triggers_runs(dag.model) for dag in dags):
        return False
    request = RunRequest(fast_retries=fast_retries)
    for error in engine.deploy_triggerable([(dag.model, source_of(dag.parsed)) for dag in dags], request):
        err.print(f"[yellow]not deployed here[/yellow] {error}")
    return True


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
        empty = {"asset": name, "uri": uri, "producers": [], "consumers": [], "queues": [], "last_event": None}
        return rows.setdefault(name, empty)

    for dag in dags:
        for task in dag.model.tasks:
            for name, uri in task.outlets:
                row(name, uri)["producers"].append(f"{dag.model.dag_id}.{task.task_id}")
        consumer = assets.consumer_of(dag.model)
        for name, uri in assets.condition_assets(consumer.condition).items() if consumer else ():
            row(name, uri)["consumers"].append(dag.model.dag_id)
        for name, uri, arn in sorted(assets.condition_queues(consumer.condition)) if consumer else ():
            if queue_url(arn) not in row(name, uri)["queues"]:
                row(name, uri)["queues"].append(queue_url(arn))
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
                "queues": ", ".join(url.rsplit("/", 1)[1] for url in r["queues"]) or "-",
                "last_event": r["last_event"]["timestamp"] if r["last_event"] else "-",
            }
            for r in listed
        ],
        (
            "asset",
            "uri",
            "producers",
            "consumers",
            *(("queues",) if any(r["queues"] for r in listed) else ()),
            "last_event",
        ),
    )


def assets_event(
    asset: Annotated[str, typer.Argument(help="an s3:// object's URI, or an asset's name or URI")],
    folder: Annotated[Path, typer.Argument(help="the folder of DAG files (default: here)")] = Path(),
    extra: Annotated[str | None, typer.Option(help="JSON object: the event's extra (not for an S3 object)")] = None,
    message: Annotated[
        list[str] | None,
        typer.Option("--message", help="a message body for the queue the asset's AssetWatcher watches (repeatable)"),
    ] = None,
    queue: Annotated[
        str | None, typer.Option(help="with --message: which watched queue (URL), when the asset watches several")
    ] = None,
    fast_retries: Annotated[
        bool, typer.Option("--fast-retries", help="wait 1 s between retries instead of retry_delay")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Update an asset as if from outside, then run the folder's DAGs it triggers. An s3:// URI is an
    object created in S3 (the event EventBridge delivers in AWS: it updates each s3:// asset it is at or
    under); `--message` sends messages to the SQS queue an AssetWatcher of the asset watches (as the
    queue's event source mapping delivers them in AWS); anything else names an asset of the folder,
    updated by hand (Airflow's "Create Asset Event")."""
    try:
        results = _event_and_runs(asset, folder, _Update(_extra(extra), message or [], queue), fast_retries, as_json)
    except UserError as exc:
        fail(exc.lines)
    if any(result.state is not RunState.SUCCESS for result in results):
        raise typer.Exit(1)


@dataclass(frozen=True)
class _Update:
    """How `assets event` updates the asset: an event made by hand, or messages to its queue."""

    extra: dict[str, Any] | None
    messages: list[str]
    queue: str | None


def _event_and_runs(asset: str, folder: Path, update: _Update, fast_retries: bool, as_json: bool) -> list[Any]:
    if update.messages and update.extra is not None:
        raise UserError(["--message and --extra: give one (a message's event carries the message as its extra)"])
    if update.queue is not None and not update.messages:
        raise UserError(["--queue: only with --message (the queue the messages are sent to)"])
    dags = folder_dags(folder)
    scheduled = consumers(dags)
    known = {name: uri for c in scheduled for name, uri in assets.condition_assets(c.condition).items()}
    s3_object = s3_location(asset) is not None and update.extra is None and not update.messages
    name = None
    if not s3_object:
        by_uri = {uri: name for name, uri in known.items()}
        name = asset if asset in known else by_uri.get(asset)
        if name is None:
            raise UserError([f"{asset}: no DAG in {folder} is scheduled on an asset of that name or URI"])
    queue_arn = _watched_queue(name, scheduled, update) if name is not None and update.messages else None
    batch = {"Records": [queue_message(queue_arn, body) for body in update.messages]} if queue_arn else None
    for number, record in enumerate(batch["Records"] if batch else (), 1):
        size = len(json.dumps(sqs_message(record)))
        if size > MAX_MESSAGE_BYTES:
            limit = f"over the {MAX_MESSAGE_BYTES:,} a message may be (send the S3 key of large data instead)"
            raise UserError([f"--message {number}: {size:,} bytes as an asset event, {limit}"])
    from airstep_local.engine import LocalEngine, RunRequest  # moto is heavy: import it only to run

    with LocalEngine(log_level="ERROR", state_file=LOCAL_STATE) as engine, redirect_stdout(sys.stderr):
        engine.register_consumers(scheduled)
        deploy_triggerable(engine, dags, fast_retries)
        if s3_object:
            recorded = engine.session.invoke_locally(engine.names.asset_events, object_created(asset))
            updated = recorded["assets"]
            if not updated:
                raise UserError([f"{asset}: no DAG in {folder} is scheduled on an s3:// asset at or above it"])
        elif queue_arn is not None:
            failures = engine.session.invoke_locally(engine.names.asset_events, batch)["batchItemFailures"]
            if failures:
                raise UserError([f"{asset}: {len(failures)} message(s) not recorded: see the log above"])
            updated = sorted({w.name for w in engine.store.watched(queue_source(queue_arn))})
        else:
            assert name is not None
            now = datetime.now(UTC).isoformat()
            event = AssetEvent(name, known[name], now, {"user": getpass.getuser()}, update.extra or {})
            assets.record(engine.store, event)
            updated = [name]
        err.print(f"updated {', '.join(updated)}")

        def run_one(consumer: DagModel, source: Any, dag_run: Any) -> Any:
            err.print(f"[bold]{consumer.dag_id}[/bold]: triggered by asset events ({dag_run.run_id})")
            request = RunRequest(conf={}, fast_retries=fast_retries, run=dag_run)
            return engine.run(consumer, source, request, on_progress=None if as_json else Progress(consumer))

        results = run_consumers(engine, dags, run_one) + engine.triggered_results()
    if as_json:
        print(json.dumps({"assets": updated, "triggered_runs": [r.to_json() for r in results]}, indent=2))
    for result in results if not as_json else []:
        print_table(result)
    if not results:
        err.print("no run is due: the conditions of the DAGs scheduled on it do not hold yet")
    return results


def _watched_queue(name: str, scheduled: list[Consumer], update: _Update) -> str:
    """The ARN of the queue `--message` sends to: the one the asset's AssetWatchers watch, or `--queue`."""
    queues = {
        arn: queue_url(arn)
        for consumer in scheduled
        for asset, _, arn in assets.condition_queues(consumer.condition)
        if asset == name
    }
    if not queues:
        raise UserError([f"--message: asset {name!r} has no AssetWatcher (Asset(..., watchers=[AssetWatcher(...)]))"])
    if update.queue is not None:
        chosen = [arn for arn, url in queues.items() if update.queue in (url, arn)]
        if not chosen:
            raise UserError([f"--queue {update.queue}: asset {name!r} watches {', '.join(sorted(queues.values()))}"])
        return chosen[0]
    if len(queues) > 1:
        raise UserError([f"--message: asset {name!r} watches several queues: choose one with --queue URL"])
    return next(iter(queues))


def queue_message(queue_arn: str, body: str) -> dict[str, Any]:
    """An SQS message as a Lambda event source mapping delivers it (one record of its batch)."""
    now = str(int(datetime.now(UTC).timestamp() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "SenderId": getpass.getuser(),
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def object_created(uri: str) -> dict[str, Any]:
    """The EventBridge event S3 sends when an object is created at `uri` (its key form-encoded)."""
    location = s3_location(uri)
    assert location is not None
    bucket, key = location
    sequencer = uuid.uuid4().hex[:18].upper()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": urllib.parse.quote_plus(key, safe="/"), "sequencer": sequencer},
            "reason": "PutObject",
        },
    }


def _extra(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError([f"--extra: not JSON ({exc.msg}, column {exc.colno})"]) from None
    if not isinstance(value, dict):
        raise UserError(["--extra: a JSON object is expected"])
    return value
