"""`airstep`: validate, compile, graph and run Airflow-style DAG files."""

from __future__ import annotations

import json
import os
import sys
import threading
from contextlib import redirect_stdout
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from airstep.errors import ParamValidationError
from airstep.model import DagModel
from airstep.sandbox import ParsedFile
from airstep.states import FINISHED, RunState, TaskState
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
from airstep_cli.dagfiles import expand_paths, load_one, problems_of, the_only_dag
from airstep_cli.errors import UserError
from airstep_cli.metadata import LOCAL_STATE, local_runs, open_target
from airstep_cli.options import run_options
from airstep_compiler import CompileError, CompileOptions, DagSource, compile_dag

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run Airflow-style DAGs on AWS Step Functions, or locally on moto.",
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE_STYLE = {
    TaskState.SUCCESS: "green",
    TaskState.FAILED: "red",
    TaskState.UPSTREAM_FAILED: "dark_orange",
    TaskState.SKIPPED: "magenta",
    TaskState.RUNNING: "cyan",
    TaskState.UP_FOR_RETRY: "yellow",
    RunState.QUEUED: "white",
}


def _print_errors(lines: list[str]) -> None:
    for line in lines:
        err.print(line, markup=False)


def _fail(lines: list[str], code: int = 1) -> None:
    _print_errors(lines)
    raise typer.Exit(code)


def _source(parsed: ParsedFile) -> DagSource:
    return DagSource(str(Path(parsed.file).resolve()), parsed.version)


@app.command()
def validate(paths: Annotated[list[str], typer.Argument(help="DAG files or folders")]) -> None:
    """Load and compile DAG files; print `file:line: message` per problem, exit 1 if any."""
    files = expand_paths(paths)
    if not files:
        _fail(["no DAG files found"])
    good, problems = problems_of(files)
    if problems:
        _fail(problems)
    out.print(f"{len(files)} file(s), {good} DAG(s): OK")


@app.command()
def compat(
    paths: Annotated[list[str], typer.Argument(help="Airflow DAG files or folders")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of lines")] = False,
) -> None:
    """Report every Airflow feature the DAG files use that airstep does not support; exit 1 if any."""
    files = compat_files(paths)
    if not files:
        _fail(["no DAG files found"])
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
        compiled = [compile_dag(m, _source(loaded), options) for m in models]
    except UserError as exc:
        _fail(exc.lines)
    except CompileError as exc:
        _fail([str(exc)])
    output.mkdir(parents=True, exist_ok=True)
    for result in compiled:
        target = output / f"{result.dag_id}.asl.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(result.pretty_json(), encoding="utf-8")
        tmp.replace(target)
        out.print(
            f"{target}: {result.task_count} tasks, {result.state_count} states ({result.gate_count} gates), "
            f"~{result.transitions_per_run} transitions/run, ~{result.history_events_per_run} history events/run, "
            f"{result.definition_bytes:,} bytes"
        )
        for shape in result.shapes():
            out.print(f"  {shape}")


@app.command()
def graph(
    dag_file: str,
    dag_id: Annotated[str | None, typer.Option(help="which DAG, if the file has several")] = None,
) -> None:
    """Print the DAG as a Mermaid flowchart."""
    try:
        _, models = load_one(dag_file, dag_id)
        model = the_only_dag(dag_file, models)
    except UserError as exc:
        _fail(exc.lines)
    print(mermaid(model))


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
) -> None:
    """Compile a DAG and run the compiled state machine here (moto), tasks by the real task runner."""
    try:
        result = run_and_report(dag_file, dag_id, logical_date, conf, as_json, fast_retries, verbose, secrets_file)
    except UserError as exc:
        _fail(exc.lines)
    if result.state is not RunState.SUCCESS:
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
                states = _run_backfill(model, _source(loaded), planned, options, fast_retries, secrets_file)
    except UserError as exc:
        _fail(exc.lines)
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
        redo = [p.run.logical_date.isoformat() for p in planned if p.attempted and p.existing and p.run.logical_date]
        if redo:
            raise UserError(
                [
                    f"--stack: {len(redo)} date(s) already have a run ({', '.join(redo[:3])}"
                    f"{', ...' if len(redo) > 3 else ''}); running a deployed run again is not supported yet: "
                    "pass --reprocess-behavior none to backfill the other dates (no run started)"
                ]
            )
        waiting = target.store.queued_runs(backfill_group(dag_id))
        if waiting and not dry_run:
            raise UserError(
                [f"DAG {dag_id!r} has a backfill still queued ({len(waiting)}+ runs waiting): one backfill at a time"]
            )
        states: dict[str, str] = {}
        if not dry_run:
            attempted = [p for p in planned if p.attempted]
            for ordinal, entry in enumerate(attempted):
                admitted = admit(
                    target.store,
                    target.sfn,
                    entry.run,
                    record.state_machine_arn,
                    options.max_active_runs,
                    order=f"{ordinal:08d}",
                )
                states[entry.run.run_id] = admitted.state.value
            if attempted:
                err.print(
                    f"backfill of {dag_id} in {stack}: {len(attempted)} run(s) queued, up to "
                    f"{options.max_active_runs} at once; `airstep runs list {dag_id} --stack {stack}` follows them"
                )
    return dag_id, planned, states


def _run_backfill(
    model: DagModel,
    source: DagSource,
    planned: list[PlannedRun],
    options: BackfillOptions,
    fast_retries: bool,
    secrets_file: Path | None,
) -> dict[str, str]:
    """Run the planned runs here, `options.max_active_runs` at once; each run's final state by run_id."""
    from airstep_local.engine import LocalEngine, RunRequest, RunResult

    runs = [p.run for p in planned if p.attempted]
    if not runs:
        return {}
    connections, variables = _read_secrets(secrets_file) if secrets_file else ({}, {})
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
            request = RunRequest(conf=options.conf, fast_retries=fast_retries)
            results = engine.run_many(model, source, request, runs, options.max_active_runs, on_end=ended)
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
        return run_and_report(dag_file, dag_id, logical_date, conf)
    except UserError as exc:
        _print_errors(exc.lines)
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
) -> Any:
    """`airstep run` without the exit: run the DAG locally, print the outcome, return the RunResult.
    Raises UserError for a broken file or bad options."""
    loaded, models = load_one(dag_file, dag_id)
    model = the_only_dag(dag_file, models)
    options = run_options(logical_date, conf, fast_retries)
    try:
        model.resolve_params(options.conf)
    except ParamValidationError as exc:
        raise UserError([f"{dag_file}: DAG {model.dag_id!r}: {exc} (no run started)"]) from None
    connections, variables = _read_secrets(secrets_file) if secrets_file else ({}, {})
    from airstep_local.engine import LocalEngine, RunRequest  # moto is heavy: import it only to run

    reporter = _Progress(model) if not as_json else None
    try:
        with (
            LocalEngine(log_level="INFO" if verbose else "ERROR", state_file=LOCAL_STATE) as engine,
            redirect_stdout(sys.stderr),
        ):
            engine.seed_secrets(connections, variables)
            request = RunRequest(options.logical_date, options.conf, options.fast_retries)
            result = engine.run(model, _source(loaded), request, on_progress=reporter)
    except CompileError as exc:
        raise UserError([str(exc)]) from None
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_table(result)
    if result.state is not RunState.SUCCESS and not as_json:
        failed = [t.label for t in result.tasks if t.state is TaskState.FAILED]
        detail = f": failed task(s) {', '.join(failed)}" if failed else f": {result.error}" if result.error else ""
        err.print(f"[red]run {result.run_id} failed[/red]{detail}")
    return result


def _read_secrets(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a --secrets file; errors name the file and line, never a secret value."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError([f"{path}: cannot read file ({exc.strerror})"]) from None
    except json.JSONDecodeError as exc:
        raise UserError([f"{path}:{exc.lineno}: not valid JSON ({exc.msg})"]) from None
    except UnicodeDecodeError:
        raise UserError([f"{path}: not UTF-8"]) from None
    unknown = set(data) - {"connections", "variables"} if isinstance(data, dict) else {"?"}
    if unknown:
        raise UserError([f'{path}: expected an object with "connections" and/or "variables"'])
    sections = []
    for section in ("connections", "variables"):
        entries = data.get(section, {})
        if not isinstance(entries, dict):
            raise UserError([f'{path}: "{section}" must be an object of name: value'])
        sections.append(entries)
    for conn_id, value in sections[0].items():
        if not isinstance(value, (str, dict)):
            raise UserError([f"{path}: connection {conn_id!r} must be a URI string or an object"])
    return sections[0], sections[1]


class _Progress:
    """Prints a line to stderr whenever a task instance changes state."""

    def __init__(self, model: DagModel) -> None:
        self.tasks = len(model.tasks)
        self.instances: set[str] = set()  # mapped instances seen ("task[i]"), and their tasks
        self.expanded: set[str] = set()
        self.finished: set[str] = set()
        self.lock = threading.Lock()

    @property
    def total(self) -> int:
        """Task instances known so far: a mapped task counts its instances once it has expanded."""
        return self.tasks - len(self.expanded) + len(self.instances)

    def __call__(self, task_id: str, state: TaskState, try_number: int) -> None:
        with self.lock:
            if task_id.endswith("]"):
                self.instances.add(task_id)
                self.expanded.add(task_id.rsplit("[", 1)[0])
            if state in FINISHED:
                self.finished.add(task_id)
            style = STATE_STYLE.get(state, "white")
            tries = f" [dim](try {try_number})[/dim]" if try_number > 1 else ""
            err.print(
                f"[dim]{len(self.finished):>4}/{self.total}[/dim] [{style}]{state:<15}[/{style}] {task_id}{tries}"
            )


def _print_table(result: Any) -> None:
    out.print(f"[bold]{result.dag_id}[/bold] {result.run_id}")
    table = Table()
    for column, justify in (("task", "left"), ("state", "left"), ("tries", "right"), ("duration", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for ti in result.tasks:
        style = STATE_STYLE.get(ti.state, "white") if ti.state else "white"
        duration = f"{ti.duration:.2f}s" if ti.duration is not None else "-"
        name = f"{ti.label} ({ti.rendered_map_index})" if ti.rendered_map_index else ti.label  # map_index_template
        table.add_row(escape(name), f"[{style}]{ti.state or 'none'}[/{style}]", str(ti.try_number), duration)
    out.print(table)
    for ti in result.tasks:
        if ti.state is TaskState.FAILED and ti.error:
            out.print(f"[red]{ti.label}[/red] (try {ti.try_number}): {ti.error}", markup=True)
    style = STATE_STYLE.get(result.state, "white")
    out.print(f"run [{style}]{result.state}[/{style}] in {result.seconds:.2f}s")


runs_app = typer.Typer(no_args_is_help=True, help="Runs recorded locally or in a deployed stack.")
dags_app = typer.Typer(no_args_is_help=True, help="DAGs deployed to a stack (or run locally).")
app.add_typer(runs_app, name="runs")
app.add_typer(dags_app, name="dags")
StackOption = Annotated[str | None, typer.Option("--stack", help="deployed stack name (default: local runs)")]
RegionOption = Annotated[str | None, typer.Option("--region", help="AWS region of the stack")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


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
        _fail(exc.lines)
    fields = ("run_id", "state", "run_type", "start_date", "end_date", "duration")
    rows = [{f: r.to_dict()[f] for f in fields} for r in runs]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        _fail([f"no runs of {dag_id!r}"])
    _print_rows(rows, fields)


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
            found = [r for r in target.store.find_runs(run_id) if dag_id in (None, r.dag_id)]
            if len(found) != 1:
                choices = ", ".join(sorted(r.dag_id for r in found))
                raise UserError(
                    [f"run {run_id!r}: " + (f"in several DAGs ({choices}); pass --dag-id" if found else "not found")]
                )
            run = found[0].to_dict()
            tasks = sorted(
                target.store.task_instances(RunKey(run["dag_id"], run_id)), key=lambda t: (t.start or "~", t.task_id)
            )
    except UserError as exc:
        _fail(exc.lines)
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
        )
    }
    if as_json:
        print(json.dumps({**summary, "tasks": [t.to_dict() for t in tasks]}, indent=2))
        return
    for key, value in summary.items():
        if value is not None:
            out.print(f"[bold]{key}[/bold]: {value}", markup=True)
    rows = [{**t.to_dict(), "task_id": t.label} for t in tasks]  # a mapped instance as task[i]
    _print_rows(rows, ("task_id", "state", "try_number", "start", "end", "duration", "error"))


@dags_app.command("list")
def dags_list(stack: StackOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Deployed DAGs and the files that failed to import."""
    try:
        with open_target(stack, region) as target:
            dags = target.store.list_dags()
            errors = target.store.list_import_errors()
    except UserError as exc:
        _fail(exc.lines)
    fields = ("dag_id", "file", "version", "schedule", "paused", "removed", "compiled_at")
    rows = [{**d.to_dict(), "schedule": d.schedule.describe() if d.schedule else None} for d in dags]
    if as_json:
        print(
            json.dumps({"dags": [d.to_dict() for d in dags], "import_errors": [e.to_dict() for e in errors]}, indent=2)
        )
        return
    _print_rows(rows, fields) if rows else out.print("no DAGs deployed")
    for error in errors:
        for problem in error.errors:
            err.print(f"{error.file}:{problem['line']}: {problem['message']}", markup=False)


@dags_app.command("pause")
def dags_pause(
    dag_id: str,
    stack: Annotated[str, typer.Option("--stack", help="deployed stack name")],
    region: RegionOption = None,
) -> None:
    """Pause a deployed DAG: its schedule starts no run until it is unpaused."""
    _set_paused(dag_id, stack, region, paused=True)


@dags_app.command("unpause")
def dags_unpause(
    dag_id: str,
    stack: Annotated[str, typer.Option("--stack", help="deployed stack name")],
    region: RegionOption = None,
) -> None:
    """Unpause a deployed DAG: its schedule fires again, and the runs it missed while paused start
    (all of them with catchup, else the latest)."""
    _set_paused(dag_id, stack, region, paused=False)


def _set_paused(dag_id: str, stack: str, region: str | None, *, paused: bool) -> None:
    import dataclasses

    from airstep.runtime.catchup import catch_up
    from airstep.runtime.pausing import set_schedule_state

    word = "paused" if paused else "unpaused"
    try:
        with open_target(stack, region) as target:
            record = target.store.get_dag(dag_id)
            if record is None or record.removed:
                raise UserError([f"DAG {dag_id!r} is not deployed in stack {stack}"])
            if record.paused == paused:
                out.print(f"{dag_id} is already {word}")
                return
            now = datetime.now(UTC)
            if record.schedule_name and not target.schedule_group:
                raise UserError([f"--stack {stack}: no ScheduleGroupName output; update the stack (sam deploy) first"])
            if record.schedule_name:
                assert target.schedule_group is not None
                set_schedule_state(target.scheduler, target.schedule_group, record.schedule_name, enabled=not paused)
            paused_at = now.isoformat() if paused else None
            target.store.put_dag(dataclasses.replace(record, paused=paused, paused_at=paused_at))
            caught = []
            if not paused and record.schedule is not None:
                # what its schedule would have fired while paused; a DAG deployed paused never ran:
                # what it missed since its start_date, as on a first deploy
                after = datetime.fromisoformat(record.paused_at) if record.paused_at else None
                caught = catch_up(
                    target.store,
                    target.sfn,
                    dag_id,
                    record.schedule,
                    record.timezone,
                    record.state_machine_arn,
                    record.max_active_runs,
                    start_date=datetime.fromisoformat(record.start_date) if record.start_date else now,
                    now=now,
                    catchup=record.catchup,
                    after=after,
                    end_date=datetime.fromisoformat(record.end_date) if record.end_date else None,
                ).admitted
    except UserError as exc:
        _fail(exc.lines)
    out.print(f"{dag_id} {word}")
    for admitted in caught:
        out.print(f"  {admitted.state} {admitted.run_id} (missed while paused)")


@app.command()
def trigger(
    dag_id: str,
    stack: Annotated[str, typer.Option("--stack", help="deployed stack name")],
    region: RegionOption = None,
    conf: Annotated[str | None, typer.Option(help="JSON object: the run's conf")] = None,
    logical_date: Annotated[str | None, typer.Option(help="ISO-8601 logical date (default: now)")] = None,
) -> None:
    """Start a manual run of a deployed DAG."""
    from airstep.runtime.admission import admit
    from airstep.runtime.scheduling import manual_run
    from airstep.sdk.param import resolve_params

    try:
        options = run_options(logical_date, conf)
        with open_target(stack, region) as target:
            record = target.store.get_dag(dag_id)
            if record is None or record.removed:
                raise UserError([f"DAG {dag_id!r} is not deployed in stack {stack}"])
            if record.paused:
                raise UserError([f"DAG {dag_id!r} is paused: `airstep dags unpause {dag_id} --stack {stack}` first"])
            try:
                resolve_params(record.params, dict(record.param_schemas), options.conf)
            except ParamValidationError as exc:
                raise UserError([f"DAG {dag_id!r}: {exc} (no run started)"]) from None
            when = options.logical_date or datetime.now(UTC)
            run = manual_run(dag_id, when, record.schedule, options.conf, record.timezone)
            admitted = admit(target.store, target.sfn, run, record.state_machine_arn, record.max_active_runs)
            if admitted.duplicate:
                at = run.logical_date.isoformat() if run.logical_date else run.run_id
                message = f"DAG {dag_id!r} already has a run at {at} ({run.run_id}): one per logical date"
                raise UserError([message])
    except UserError as exc:
        _fail(exc.lines)
    if admitted.state is RunState.QUEUED:
        out.print(f"queued {run.run_id}: {dag_id} has {record.max_active_runs} run(s) active (max_active_runs)")
    else:
        out.print(f"started {run.run_id}: {admitted.execution_arn}")


def _print_rows(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    table = Table()
    for field in fields:
        table.add_column(field)
    for row in rows:
        values = []
        for field in fields:
            value = row.get(field)
            style = STATE_STYLE.get(value, "") if field == "state" else ""
            text = "-" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))
            values.append(f"[{style}]{text}[/{style}]" if style else text)
        table.add_row(*values)
    out.print(table)


def main() -> None:
    """The `airstep` command. It ends the process without tearing the interpreter down: after a local
    run, freeing moto's in-memory AWS takes half a second, and by then every result is written."""
    try:
        app()
        code: object = 0
    except UserError as exc:
        _print_errors(exc.lines)
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
