"""`airstep`: validate, compile, graph and run Airflow-style DAG files."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from airstep.errors import ParamValidationError
from airstep.model import DagModel
from airstep.runtime.audit import AuditAction
from airstep.states import RunState, TaskState
from airstep_cli import run_control
from airstep_cli.assets import (
    assets_event,
    assets_list,
    consumers,
    deploy_triggerable,
    folder_dags,
    run_consumers,
    triggers_runs,
    updates_assets,
)
from airstep_cli.audit import audit, record_change
from airstep_cli.backfill import (
    DEFAULT_MAX_ACTIVE_RUNS,
    BackfillOptions,
    PlannedRun,
    backfill_options,
    describe_skip,
    plan_backfill,
)
from airstep_cli.compat import dag_files as compat_files
from airstep_cli.compat import report as compat_report
from airstep_cli.dagfiles import expand_paths, load_one, problems_of, source_of, the_only_dag
from airstep_cli.errors import UserError
from airstep_cli.logs import logs
from airstep_cli.metadata import LOCAL_STATE, deployed_model, find_run, local_runs, open_target
from airstep_cli.options import JsonOption, RegionOption, StackOption, json_object, read_secrets, run_options
from airstep_cli.output import (
    STATE_STYLE,
    Progress,
    err,
    fail,
    out,
    print_errors,
    print_rows,
    print_table,
    report_missed_deadline,
)
from airstep_cli.prices import describe as describe_price
from airstep_cli.prices import estimate_per_run, price
from airstep_cli.ui import ui
from airstep_compiler import CompileError, CompileOptions, DagSource, compile_dag

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run Airflow-style DAGs on AWS Step Functions, or locally on moto.",
)


@app.command()
def validate(paths: Annotated[list[str], typer.Argument(help="DAG files or folders")]) -> None:
    """Load and compile DAG files; print `file:line: message` per problem, exit 1 if any."""
    files = expand_paths(paths)
    if not files:
        fail(["no DAG files found"])
    good, problems = problems_of(files)
    if problems:
        fail(problems)
    out.print(f"{len(files)} file(s), {good} DAG(s): OK")


@app.command()
def compat(
    paths: Annotated[list[str], typer.Argument(help="Airflow DAG files or folders")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of lines")] = False,
) -> None:
    """Report every Airflow feature the DAG files use that airstep does not support; exit 1 if any."""
    files = compat_files(paths)
    if not files:
        fail(["no DAG files found"])
    result = compat_report(files)
    if as_json:
        findings = [{"file": f.file, "line": f.line, "message": f.message} for f in result.findings]
        print(json.dumps({"files": result.files, "findings": findings}, indent=2))
    else:
        for finding in result.findings:
            out.print(str(finding), markup=False)
        ready = result.files - result.files_with_findings
        out.print(f"{result.files} file(s): {ready} run on airstep as they are, {result.files_with_findings} do not")
    if result.findings:
        raise typer.Exit(1)


@app.command(name="compile")
def compile_command(
    dag_file: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for <dag_id>.asl.json")] = Path("."),
    dag_id: Annotated[str | None, typer.Option(help="only this DAG")] = None,
    ignore_limits: Annotated[
        bool, typer.Option("--ignore-limits", help="write the definition even if it breaks a Step Functions quota")
    ] = False,
) -> None:
    """Compile a DAG file to Amazon States Language, one <dag_id>.asl.json per DAG."""
    try:
        loaded, models = load_one(dag_file, dag_id)
        options = CompileOptions(check_limits=not ignore_limits)
        compiled = [compile_dag(m, source_of(loaded), options) for m in models]
    except UserError as exc:
        fail(exc.lines)
    except CompileError as exc:
        fail([str(exc)])
    output.mkdir(parents=True, exist_ok=True)
    for model, result in zip(models, compiled, strict=True):
        target = output / f"{result.dag_id}.asl.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(result.pretty_json(), encoding="utf-8")
        tmp.replace(target)
        out.print(
            f"{target}: {result.task_count} tasks, {result.state_count} states ({result.gate_count} gates), "
            f"~{result.transitions_per_run} transitions/run, ~{result.history_events_per_run} history events/run, "
            f"{result.definition_bytes:,} bytes"
        )
        sizes = [t.container for t in model.tasks if t.container is not None]
        out.print(f"  cost: {estimate_per_run(result.transitions_per_run, result.invocations_per_run, sizes)}")
        for shape in result.shapes():
            out.print(f"  {shape}")
        if result.policy is not None:
            policy = output / f"{result.dag_id}.policy.json"
            tmp = policy.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(result.policy, indent=2) + "\n", encoding="utf-8")
            tmp.replace(policy)
            actions = {a for statement in result.policy["Statement"] for a in statement["Action"]}
            resources = {r for statement in result.policy["Statement"] for r in statement["Resource"]}
            out.print(
                f"  IAM: {policy}: its role may make {len(actions)} kinds of call on {len(resources)} resources, "
                "nothing else (the environment's permissions boundary caps what a template leaves open)"
            )


@app.command()
def graph(
    dag_file: str,
    dag_id: Annotated[str | None, typer.Option(help="which DAG, if the file has several")] = None,
    form: Annotated[str, typer.Option("--format", help="mermaid, svg or png")] = "mermaid",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write it to this file (png: needed)")] = None,
) -> None:
    """Draw the DAG: a Mermaid flowchart, or the picture `airstep ui` draws (task groups as boxes) as
    SVG or PNG."""
    try:
        if form not in ("mermaid", "svg", "png"):
            raise UserError([f"--format {form}: mermaid, svg or png"])
        if form == "png" and output is None:
            raise UserError(["--format png: name the file to write with -o FILE.png"])
        _, models = load_one(dag_file, dag_id)
        model = the_only_dag(dag_file, models)
        drawn = _drawing(model, form)
    except UserError as exc:
        fail(exc.lines)
    if output is None:
        print(drawn.decode(), end="")
        return
    output.write_bytes(drawn)
    err.print(f"wrote {output}")


def _drawing(model: DagModel, form: str) -> bytes:
    if form == "mermaid":
        return (mermaid(model) + "\n").encode()
    from airstep_ui.pictures import graph_svg

    svg = graph_svg(model, [])
    if form == "svg":
        return (svg + "\n").encode()
    try:
        import resvg_py
    except ImportError:
        raise UserError(["--format png needs resvg-py: pip install 'airstep[png]'"]) from None
    return bytes(resvg_py.svg_to_bytes(svg_string=svg, background="white"))


def mermaid(model: DagModel) -> str:
    """The DAG as a Mermaid flowchart: task groups as (nested) subgraphs, edge labels on edges."""
    ids = {t.task_id: f"t{i}" for i, t in enumerate(model.tasks)}
    members: dict[str | None, list[str]] = {}
    for t in model.tasks:
        members.setdefault(t.task_group, []).append(f'{ids[t.task_id]}["{t.task_id}"]')
    children: dict[str | None, list[str]] = {}
    for group_id, parent, _ in model.task_groups:
        children.setdefault(parent, []).append(group_id)
    lines = ["flowchart LR"]

    def emit(group: str | None, depth: int) -> None:
        indent = "    " * depth
        lines.extend(f"{indent}{node}" for node in members.get(group, []))
        for number, child in enumerate(children.get(group, [])):
            lines.append(f'{indent}subgraph {child.replace(".", "_")}_{depth}_{number}["{child}"]')
            emit(child, depth + 1)
            lines.append(f"{indent}end")

    emit(None, 1)
    labels = {(up, down): label for up, down, label in model.edge_labels}
    for t in model.tasks:
        for u in t.upstream:
            label = labels.get((u, t.task_id))
            arrow = f'-->|"{label.replace(chr(34), "#quot;")}"|' if label else "-->"
            lines.append(f"    {ids[u]} {arrow} {ids[t.task_id]}")
    return "\n".join(lines)


@app.command()
def run(
    dag_file: str,
    dag_id: Annotated[str | None, typer.Option(help="which DAG, if the file has several")] = None,
    logical_date: Annotated[str | None, typer.Option(help="ISO-8601 logical date (default: now, UTC)")] = None,
    conf: Annotated[str | None, typer.Option(help="JSON object: the run's conf (overrides params)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
    fast_retries: Annotated[
        bool, typer.Option("--fast-retries", help="wait 1 s between retries instead of retry_delay (local iteration)")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show the task runner's JSON logs on stderr")
    ] = False,
    secrets_file: Annotated[
        Path | None,
        typer.Option("--secrets", help='JSON file: {"connections": {id: uri-or-object}, "variables": {key: value}}'),
    ] = None,
    with_consumers: Annotated[
        bool,
        typer.Option("--with-consumers", help="then run the DAGs (of the file's folder) that its asset events trigger"),
    ] = False,
    functions: Annotated[
        list[str] | None,
        typer.Option(
            "--lambda", help="NAME=FILE.py:FUNCTION: run this handler here when the DAG invokes Lambda function NAME"
        ),
    ] = None,
) -> None:
    """Compile a DAG and run the compiled state machine here (moto), tasks by the real task runner."""
    try:
        results = run_and_report(
            dag_file,
            dag_id,
            logical_date,
            conf,
            as_json,
            fast_retries,
            verbose,
            secrets_file,
            with_consumers,
            functions or [],
        )
    except UserError as exc:
        fail(exc.lines)
    first = results[0]
    arguments = {"file": dag_file, "conf": json_object("--conf", conf), "logical_date": logical_date}
    record_change(None, AuditAction.TRIGGER, first.dag_id, first.run_id, first.state.value, arguments)
    if any(result.state is not RunState.SUCCESS for result in results):
        raise typer.Exit(1)


@app.command()
def backfill(
    dag: Annotated[str, typer.Argument(help="a DAG file (with --stack: a deployed DAG's id)")],
    from_date: Annotated[str, typer.Option("--from-date", help="ISO-8601: the window's start (inclusive)")],
    to_date: Annotated[str, typer.Option("--to-date", help="ISO-8601: the window's end (inclusive)")],
    dag_id: Annotated[str | None, typer.Option(help="which DAG, if the file has several")] = None,
    max_active_runs: Annotated[int, typer.Option(help="runs at once")] = DEFAULT_MAX_ACTIVE_RUNS,
    reprocess_behavior: Annotated[
        str, typer.Option(help="a date that has a run: none (keep it), failed (redo it if failed), completed")
    ] = "none",
    run_backwards: Annotated[bool, typer.Option("--run-backwards", help="newest first")] = False,
    dag_run_conf: Annotated[str | None, typer.Option(help="JSON object: every run's conf")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the runs, start none")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
    fast_retries: Annotated[
        bool, typer.Option("--fast-retries", help="wait 1 s between retries instead of retry_delay (local)")
    ] = False,
    secrets_file: Annotated[Path | None, typer.Option("--secrets", help="as for `airstep run` (local)")] = None,
    stack: Annotated[str | None, typer.Option("--stack", help="backfill a DAG deployed to this stack")] = None,
    region: RegionOption = None,
) -> None:
    """Run a DAG's schedule over a past window, as `airflow backfill create` plans it: locally here, or
    with --stack in a deployed environment (the runs are queued there and the command returns)."""
    now = datetime.now(UTC)
    try:
        options = backfill_options(
            from_date, to_date, max_active_runs, reprocess_behavior, run_backwards, dag_run_conf, now
        )
        if stack:
            dag_id, planned, states = _backfill_stack(dag, stack, region, options, now, dry_run)
        else:
            loaded, models = load_one(dag, dag_id)
            model = the_only_dag(dag, models)
            dag_id = model.dag_id
            try:
                model.resolve_params(options.conf)
            except ParamValidationError as exc:
                raise UserError([f"{dag}: DAG {dag_id!r}: {exc} (no run started)"]) from None
            existing = local_runs(dag_id)
            planned = _planned(dag_id, model.schedule, model.timezone, options, lambda _: existing, now)
            states = {}
            if not dry_run:
                states = _run_backfill(model, source_of(loaded), planned, options, fast_retries, secrets_file)
                _audit_backfill(None, dag_id, options, states)
    except UserError as exc:
        fail(exc.lines)
    _report_backfill(dag_id, planned, states, as_json, dry_run)
    if not stack and any(state != RunState.SUCCESS for state in states.values()):
        raise typer.Exit(1)


def _planned(
    dag_id: str, schedule: Any, zone: str, options: BackfillOptions, runs_at: Any, now: datetime
) -> list[PlannedRun]:
    """The backfill's plan; UserError if it has no run at all. Dates that keep their run are noted."""
    planned = plan_backfill(dag_id, schedule, zone, options, runs_at, now)
    if not planned:
        window = f"[{options.from_date.isoformat()}, {options.to_date.isoformat()}]"
        raise UserError([f"no runs to create for DAG {dag_id!r} in {window}: none has ended in it"])
    for skipped in (p for p in planned if not p.attempted):
        err.print(describe_skip(skipped), markup=False)
    return planned


def _backfill_stack(
    dag_id: str, stack: str, region: str | None, options: BackfillOptions, now: datetime, dry_run: bool
) -> tuple[str, list[PlannedRun], dict[str, str]]:
    """Queue the backfill's runs in the stack (its own limit, `--max-active-runs`): its slots start
    them, oldest planned first, as earlier ones end; the state each run has now."""
    from airstep.runtime.admission import admit
    from airstep.runtime.clearing import not_yet_rerunnable
    from airstep.runtime.store.slots import backfill_group
    from airstep.sdk.param import resolve_params

    with open_target(stack, region) as target:
        record = target.store.get_dag(dag_id)
        if record is None or record.removed:
            raise UserError([f"DAG {dag_id!r} is not deployed in stack {stack}"])
        try:
            resolve_params(record.params, dict(record.param_schemas), options.conf)
        except ParamValidationError as exc:
            raise UserError([f"DAG {dag_id!r}: {exc} (no run started)"]) from None
        planned = _planned(
            dag_id, record.schedule, record.timezone, options, partial(target.store.runs_at, dag_id), now
        )
        redo = [p for p in planned if p.attempted and p.existing]
        now_at = datetime.now(UTC)
        for entry in redo:
            if entry.existing and (why := not_yet_rerunnable(target.sfn, entry.existing, now_at)):
                raise UserError([f"run {entry.run.run_id!r}: {why} (no run started)"])
        waiting = target.store.queued_runs(backfill_group(dag_id))
        if waiting and not dry_run:
            raise UserError(
                [f"DAG {dag_id!r} has a backfill still queued ({len(waiting)}+ runs waiting): one backfill at a time"]
            )
        states: dict[str, str] = {}
        if not dry_run:
            attempted = [p for p in planned if p.attempted]
            model = deployed_model(record, region) if redo else None
            for ordinal, entry in enumerate(attempted):
                run = _cleared_again(target.store, model, entry) if entry.existing and model else entry.run
                admitted = admit(
                    target.store,
                    target.sfn,
                    run,
                    record.state_machine_arn,
                    options.max_active_runs,
                    order=f"{ordinal:08d}",
                )
                states[entry.run.run_id] = admitted.state.value
            _audit_backfill(target, dag_id, options, states)
            if attempted:
                err.print(
                    f"backfill of {dag_id} in {stack}: {len(attempted)} run(s) queued, up to "
                    f"{options.max_active_runs} at once; `airstep runs list {dag_id} --stack {stack}` follows them"
                )
    return dag_id, planned, states


def _audit_backfill(target: Any, dag_id: str, options: BackfillOptions, states: dict[str, str]) -> None:
    counts = Counter(states.values())
    outcome = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no run"
    arguments = {
        "from_date": options.from_date.isoformat(),
        "to_date": options.to_date.isoformat(),
        "reprocess_behavior": options.reprocess.value,
        "max_active_runs": options.max_active_runs,
        "run_backwards": options.backwards,
        "conf": options.conf,
    }
    record_change(target, AuditAction.BACKFILL, dag_id, None, outcome, arguments)


def _run_backfill(
    model: DagModel,
    source: DagSource,
    planned: list[PlannedRun],
    options: BackfillOptions,
    fast_retries: bool,
    secrets_file: Path | None,
) -> dict[str, str]:
    """Run the planned runs here, `options.max_active_runs` at once; each run's final state by run_id."""
    from airstep.runtime.store import RunKey
    from airstep_local.engine import LocalEngine, RunRequest, RunResult

    runs = [p.run for p in planned if p.attempted]
    if not runs:
        return {}
    connections, variables = read_secrets(secrets_file) if secrets_file else ({}, {})
    err.print(f"backfill of {model.dag_id}: {len(runs)} run(s), up to {options.max_active_runs} at once")
    done: list[RunResult] = []

    def ended(result: RunResult) -> None:
        done.append(result)
        style = STATE_STYLE.get(result.state, "white")
        failed = [t.label for t in result.tasks if t.state is TaskState.FAILED]
        detail = f" (failed: {', '.join(failed)})" if failed else ""
        err.print(
            f"[dim]{len(done):>4}/{len(runs)}[/dim] [{style}]{result.state:<8}[/{style}] "
            f"{escape(result.run_id)} in {result.seconds:.1f}s{escape(detail)}"
        )

    try:
        with LocalEngine(state_file=LOCAL_STATE) as engine, redirect_stdout(sys.stderr):
            engine.seed_secrets(connections, variables)
            redo = {p.run.run_id: p for p in planned if p.attempted and p.existing}
            engine.load_runs([RunKey(model.dag_id, run_id) for run_id in redo])

            def prepare(run: Any) -> Any:  # a run redone is cleared as it starts: an interrupt leaves the rest
                return _cleared_again(engine.store, model, redo[run.run_id]) if run.run_id in redo else run

            request = RunRequest(conf=options.conf, fast_retries=fast_retries)
            if triggers_runs(model):  # the folder's DAGs it may trigger run here too
                deploy_triggerable(engine, folder_dags(Path(source.uri).parent), fast_retries)
            results = engine.run_many(
                model, source, request, runs, options.max_active_runs, on_end=ended, prepare=prepare
            )
            engine.triggered_results()  # (they end before the engine does)
    except CompileError as exc:
        raise UserError([str(exc)]) from None
    except KeyboardInterrupt:
        raise UserError(
            [
                f"backfill interrupted after {len(done)} of {len(runs)} run(s); the same command starts the rest "
                "(the stopped runs are failed: --reprocess-behavior failed runs them again)"
            ]
        ) from None
    return {result.run_id: result.state.value for result in results}


def _cleared_again(store: Any, model: DagModel, planned: PlannedRun) -> Any:
    """A date whose run the backfill redoes: as Airflow's backfill, every task of the run is cleared
    and it runs again as a backfill run with the backfill's conf (its try numbers go on)."""
    from airstep.runtime.clearing import ClearError, clear_run
    from airstep.runtime.store import RunKey

    record = store.get_run(RunKey(model.dag_id, planned.run.run_id)) or planned.existing
    try:
        cleared = clear_run(store, record, [t.task_id for t in model.tasks], datetime.now(UTC).isoformat(), planned.run)
    except ClearError as exc:
        raise UserError([f"backfill: {exc}"]) from None
    assert cleared.run is not None  # a DAG has a task
    return cleared.run


def _report_backfill(
    dag_id: str, planned: list[PlannedRun], states: dict[str, str], as_json: bool, dry_run: bool
) -> None:
    if as_json:
        runs = [p.to_json(states.get(p.run.run_id)) for p in planned]
        print(json.dumps({"dag_id": dag_id, "runs": runs}, indent=2))
        return
    for entry in (p.to_json(states.get(p.run.run_id)) for p in planned):  # lines: no table cuts a date short
        style = STATE_STYLE.get(entry["state"], "white")
        interval = f"[{entry['data_interval_start']}, {entry['data_interval_end']}]"
        out.print(f"{escape(entry['run_id'])}  {interval}  [{style}]{entry['state']}[/{style}]")
    attempted = sum(p.attempted for p in planned)
    if dry_run:
        out.print(f"dry run: {attempted} run(s) would start, {len(planned) - attempted} date(s) already have one")


def test_dag(dag_file: str, dag_id: str, logical_date: str | None, conf: str | None) -> Any:
    """What `dag.test()` calls (the `airstep.local_runner` entry point): `airstep run` for one DAG;
    a broken file is reported as the command reports it, and exits 1."""
    try:
        (result,) = run_and_report(dag_file, dag_id, logical_date, conf)
        return result
    except UserError as exc:
        print_errors(exc.lines)
        raise SystemExit(1) from None


def run_and_report(
    dag_file: str,
    dag_id: str | None = None,
    logical_date: str | None = None,
    conf: str | None = None,
    as_json: bool = False,
    fast_retries: bool = False,
    verbose: bool = False,
    secrets_file: Path | None = None,
    with_consumers: bool = False,
    functions: list[str] | None = None,
) -> list[Any]:
    """`airstep run` without the exit: run the DAG locally (and, `with_consumers`, the runs its asset
    events trigger), print the outcomes, return the RunResults. Raises UserError for a broken file
    or bad options; `functions`: `--lambda` handlers of the Lambda functions the DAG invokes."""
    loaded, models = load_one(dag_file, dag_id)
    model = the_only_dag(dag_file, models)
    options = run_options(logical_date, conf, fast_retries)
    try:
        model.resolve_params(options.conf)
    except ParamValidationError as exc:
        raise UserError([f"{dag_file}: DAG {model.dag_id!r}: {exc} (no run started)"]) from None
    connections, variables = read_secrets(secrets_file) if secrets_file else ({}, {})
    from airstep_local.engine import LocalEngine, RunRequest  # moto is heavy: import it only to run
    from airstep_local.services import FunctionSpecError, local_function

    try:
        handlers = dict(local_function(spec) for spec in functions or [])
    except FunctionSpecError as exc:
        raise UserError([str(exc)]) from None

    # the folder's DAGs scheduled on assets hear of this run's asset events (as a deploy registers them),
    # and those its TriggerDagRunOperators may trigger are deployed here
    needs_folder = with_consumers or updates_assets(model) or triggers_runs(model)
    folder = folder_dags(Path(dag_file).parent, loaded) if needs_folder else []
    try:
        with (
            metrics_off(),
            LocalEngine(log_level="INFO" if verbose else "ERROR", state_file=LOCAL_STATE, functions=handlers) as engine,
            redirect_stdout(sys.stderr),
        ):
            engine.seed_secrets(connections, variables)
            engine.register_consumers(consumers(folder))
            engine.on_deadline = report_missed_deadline
            request = RunRequest(options.logical_date, options.conf, options.fast_retries)
            triggering = deploy_triggerable(engine, folder, options.fast_retries)
            results = [engine.run(model, source_of(loaded), request, on_progress=None if as_json else Progress(model))]

            def run_one(consumer: DagModel, source: Any, dag_run: Any) -> Any:
                err.print(f"[bold]{consumer.dag_id}[/bold]: triggered by asset events ({dag_run.run_id})")
                consumer_request = RunRequest(conf={}, fast_retries=options.fast_retries, run=dag_run)
                return engine.run(
                    consumer, source, consumer_request, on_progress=None if as_json else Progress(consumer)
                )

            if with_consumers:
                results += run_consumers(engine, folder, run_one)
            results += engine.triggered_results()
    except CompileError as exc:
        raise UserError([str(exc)]) from None
    if as_json:
        first, *triggered = (result.to_json() for result in results)
        shown = {**first, "triggered_runs": triggered} if with_consumers or triggering else first
        print(json.dumps(shown, indent=2))
    for result in results if not as_json else []:
        print_table(result)
        if result.state is not RunState.SUCCESS:
            failed = [t.label for t in result.tasks if t.state is TaskState.FAILED]
            detail = f": failed task(s) {', '.join(failed)}" if failed else f": {result.error}" if result.error else ""
            err.print(f"[red]run {result.run_id} failed[/red]{detail}")
    return results


@contextmanager
def metrics_off() -> Iterator[None]:
    """No CloudWatch metric lines while a run goes here: nothing reads them."""
    previous = os.environ.get(METRICS_DISABLED)
    os.environ[METRICS_DISABLED] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(METRICS_DISABLED, None)
        else:
            os.environ[METRICS_DISABLED] = previous


METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"
runs_app = typer.Typer(no_args_is_help=True, help="Runs recorded locally or in a deployed stack.")
dags_app = typer.Typer(no_args_is_help=True, help="DAGs deployed to a stack (or run locally).")
app.add_typer(runs_app, name="runs")
app.add_typer(dags_app, name="dags")
app.command()(run_control.trigger)
app.command()(logs)
app.command()(ui)
app.command()(audit)
pools_app = typer.Typer(no_args_is_help=True, help="Pools: limits on task slots running at once, across DAGs.")
app.add_typer(pools_app, name="pools")
pools_app.command("set")(run_control.pools_set)
pools_app.command("list")(run_control.pools_list)
pools_app.command("delete")(run_control.pools_delete)
runs_app.command("clear")(run_control.runs_clear)
runs_app.command("mark")(run_control.runs_mark)
dags_app.command("pause")(run_control.dags_pause)
dags_app.command("unpause")(run_control.dags_unpause)
assets_app = typer.Typer(no_args_is_help=True, help="Assets: what DAGs update and are scheduled on.")
app.add_typer(assets_app, name="assets")
assets_app.command("list")(assets_list)
assets_app.command("event")(assets_event)


@runs_app.command("list")
def runs_list(
    dag_id: str,
    stack: StackOption = None,
    region: RegionOption = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 25,
    as_json: JsonOption = False,
) -> None:
    """Runs of a DAG, newest first."""
    try:
        with open_target(stack, region) as target:
            runs = target.store.runs_of_dag(dag_id, limit)
    except UserError as exc:
        fail(exc.lines)
    fields = ("run_id", "state", "run_type", "start_date", "end_date", "duration")
    rows = [{f: r.to_dict()[f] for f in fields} for r in runs]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        fail([f"no runs of {dag_id!r}"])
    print_rows(rows, fields)


@runs_app.command("show")
def runs_show(
    run_id: str,
    dag_id: Annotated[str | None, typer.Option(help="the DAG, if several have this run_id")] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """One run and its task instances."""
    from airstep.runtime.store import RunKey

    try:
        with open_target(stack, region) as target:
            record = find_run(target.store, run_id, dag_id)
            key = RunKey(record.dag_id, run_id)
            run = {**record.to_dict(), "usage": record.usage(target.store.lambda_usage(key))}
            run["deadlines"] = [d.to_dict() for d in target.store.deadlines(key)]
            tasks = sorted(target.store.task_instances(key, with_tries=True), key=lambda t: (t.start or "~", t.task_id))
    except UserError as exc:
        fail(exc.lines)
    summary = {
        k: run[k]
        for k in (
            "dag_id",
            "run_id",
            "state",
            "run_type",
            "logical_date",
            "start_date",
            "end_date",
            "duration",
            "error",
            "clear_number",
            "triggered_by",
        )
    }
    events = run.get("triggering_asset_events", [])
    asker = run.get("triggering_task")
    cost = {"usage": run["usage"], "cost": price(run["usage"], target.region).to_dict()}
    if as_json:
        extra = {"triggering_task": asker} if asker else {}
        shown = {
            **summary,
            **extra,
            **cost,
            "deadlines": run["deadlines"],
            "triggering_asset_events": events,
            "tasks": [t.to_dict() for t in tasks],
        }
        print(json.dumps(shown, indent=2))
        return
    for key, value in summary.items():
        if value not in (None, 0):  # a run never cleared has clear_number 0
            out.print(f"[bold]{key}[/bold]: {value}", markup=True)
    out.print(f"[bold]cost[/bold]: {escape(describe_price(run['usage'], target.region))}")
    for deadline in run["deadlines"]:
        name = f" {deadline['name']!r}" if deadline["name"] else ""
        out.print(f"[bold]deadline{escape(name)}[/bold]: {deadline['deadline']} ({deadline['state']})")
    if asker:
        by = f"{asker['dag_id']}.{asker['task_id']}" + (f"[{asker['map_index']}]" if asker["map_index"] >= 0 else "")
        out.print(f"[bold]triggering task[/bold]: {escape(by)} in {escape(asker['run_id'])}")
    for event in events:
        source = event["source"]
        by = ".".join(str(source[k]) for k in ("dag_id", "task_id") if k in source) or json.dumps(source)
        out.print(f"[bold]asset event[/bold]: {escape(event['asset'])} at {event['timestamp']} by {escape(by)}")
    rows = [{**t.to_dict(), "task_id": t.label} for t in tasks]  # a mapped instance as task[i]
    print_rows(rows, ("task_id", "state", "try_number", "start", "end", "duration", "error"))


@dags_app.command("list")
def dags_list(stack: StackOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Deployed DAGs and the files that failed to import."""
    try:
        with open_target(stack, region) as target:
            dags = target.store.list_dags()
            errors = target.store.list_import_errors()
    except UserError as exc:
        fail(exc.lines)
    fields = ("dag_id", "file", "version", "schedule", "paused", "removed", "compiled_at")
    rows = [{**d.to_dict(), "schedule": d.schedule.describe() if d.schedule else None} for d in dags]
    if as_json:
        print(
            json.dumps({"dags": [d.to_dict() for d in dags], "import_errors": [e.to_dict() for e in errors]}, indent=2)
        )
        return
    print_rows(rows, fields) if rows else out.print("no DAGs deployed")
    for error in errors:
        for problem in error.errors:
            err.print(f"{error.file}:{problem['line']}: {problem['message']}", markup=False)


def main() -> None:
    """The `airstep` command. It ends the process without tearing the interpreter down: after a local
    run, freeing moto's in-memory AWS takes half a second, and by then every result is written."""
    try:
        app()
        code: object = 0
    except UserError as exc:
        print_errors(exc.lines)
        code = 1
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
