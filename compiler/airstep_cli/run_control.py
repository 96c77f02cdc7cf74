"""Commands that control runs: trigger one, pause and unpause a DAG's schedule, clear and mark tasks
of a run that has ended (locally, or with --stack in a deployed environment)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from airstep.contract import DEFAULT_POOL, RUN_POOL_PREFIX
from airstep.errors import ParamValidationError
from airstep.model import DagModel
from airstep.runtime.audit import AuditAction
from airstep.states import RunState, TaskState
from airstep_cli.assets import deploy_triggerable, folder_dags, triggers_runs
from airstep_cli.audit import record_change
from airstep_cli.dagfiles import load_one, source_of
from airstep_cli.errors import UserError
from airstep_cli.metadata import LOCAL_STATE, Target, deployed_model, find_run, open_target
from airstep_cli.options import JsonOption, RegionOption, StackOption, read_secrets, run_options
from airstep_cli.output import Progress, fail, out, print_rows, print_table

if TYPE_CHECKING:  # the runtime store (boto3) is imported only by the commands that use it
    from airstep.contract import DagRun
    from airstep.runtime.admission import Admission
    from airstep.runtime.clearing import Cleared
    from airstep.runtime.store import DagRecord, MetadataStore, RunRecord

DagIdOption = Annotated[str | None, typer.Option("--dag-id", help="the DAG, if several have this run_id")]
FastRetriesOption = Annotated[
    bool, typer.Option("--fast-retries", help="wait 1 s between retries instead of retry_delay (local)")
]
SecretsOption = Annotated[Path | None, typer.Option("--secrets", help="as for `airstep run` (local)")]


def dags_pause(
    dag_id: str,
    stack: Annotated[str, typer.Option("--stack", help="deployed stack name")],
    region: RegionOption = None,
) -> None:
    """Pause a deployed DAG: its schedule starts no run until it is unpaused."""
    _set_paused(dag_id, stack, region, paused=True)


def dags_unpause(
    dag_id: str,
    stack: Annotated[str, typer.Option("--stack", help="deployed stack name")],
    region: RegionOption = None,
) -> None:
    """Unpause a deployed DAG: its schedule fires again, and the runs it missed while paused start
    (all of them with catchup, else the latest)."""
    _set_paused(dag_id, stack, region, paused=False)


def _set_paused(dag_id: str, stack: str, region: str | None, *, paused: bool) -> None:
    from airstep.runtime import assets
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
            record_change(target, AuditAction.PAUSE if paused else AuditAction.UNPAUSE, dag_id, outcome=word)
            caught = []
            if not paused and record.schedule is not None and record.schedule.timed:
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
            if not paused and record.schedule is not None and record.schedule.assets is not None:
                caught = assets.start_runs(target.store, target.sfn, [dag_id])  # its queue waited for it
    except UserError as exc:
        fail(exc.lines)
    out.print(f"{dag_id} {word}")
    for admitted in caught:
        out.print(f"  {admitted.state} {admitted.run_id} (missed while paused)")


def trigger(
    dag_id: str,
    stack: Annotated[str, typer.Option("--stack", help="deployed stack name")],
    region: RegionOption = None,
    conf: Annotated[str | None, typer.Option(help="JSON object: the run's conf")] = None,
    logical_date: Annotated[str | None, typer.Option(help="ISO-8601 logical date (default: now)")] = None,
) -> None:
    """Start a manual run of a deployed DAG."""
    try:
        options = run_options(logical_date, conf)
        with open_target(stack, region) as target:
            record = target.store.get_dag(dag_id)
            if record is None or record.removed:
                raise UserError([f"DAG {dag_id!r} is not deployed in stack {stack}"])
            try:
                run, admitted = start_manual_run(target, record, options.conf, options.logical_date)
            except ParamValidationError as exc:
                raise UserError([f"DAG {dag_id!r}: {exc} (no run started)"]) from None
            arguments = {"conf": options.conf, "logical_date": logical_date}
            record_change(target, AuditAction.TRIGGER, dag_id, run.run_id, admitted.state.value, arguments)
    except UserError as exc:
        fail(exc.lines)
    if admitted.state is RunState.QUEUED:
        out.print(f"queued {run.run_id}: {dag_id} has {record.max_active_runs} run(s) active (max_active_runs)")
    else:
        out.print(f"started {run.run_id}: {admitted.execution_arn}")


def start_manual_run(
    target: Target, record: DagRecord, conf: dict[str, Any], logical_date: datetime | None
) -> tuple[DagRun, Admission]:
    """Admit a manual run of a deployed DAG (started, or queued behind max_active_runs), once its
    params accept `conf` (ParamValidationError names the first they refuse); UserError when the DAG
    is paused or already has a run at that logical date."""
    from airstep.runtime.admission import admit
    from airstep.runtime.scheduling import manual_run
    from airstep.sdk.param import resolve_params

    dag_id = record.dag_id
    if record.paused:
        raise UserError([f"DAG {dag_id!r} is paused: `airstep dags unpause {dag_id} --stack {target.stack}` first"])
    resolve_params(record.params, dict(record.param_schemas), conf)
    run = manual_run(dag_id, logical_date or datetime.now(UTC), record.schedule, conf, record.timezone)
    admitted = admit(target.store, target.sfn, run, record.state_machine_arn, record.max_active_runs)
    if admitted.duplicate:
        at = run.logical_date.isoformat() if run.logical_date else run.run_id
        raise UserError([f"DAG {dag_id!r} already has a run at {at} ({run.run_id}): one per logical date"])
    return run, admitted


def runs_clear(
    run_id: str,
    task: Annotated[list[str] | None, typer.Option("--task", help="a task to clear (repeat; default: all)")] = None,
    upstream: Annotated[bool, typer.Option("--upstream", help="with the tasks upstream of them")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="with the tasks downstream of them")] = False,
    only_failed: Annotated[bool, typer.Option("--only-failed", help="only failed and upstream_failed tasks")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the tasks it would clear, change nothing")] = False,
    dag_id: DagIdOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
    fast_retries: FastRetriesOption = False,
    secrets_file: SecretsOption = None,
) -> None:
    """Run tasks of an ended run again, as Airflow's clear: in a new execution of the same run, the
    cleared tasks run (their try numbers go on), the others keep their state and results. Locally the
    run runs here on the DAG file as it is now; with --stack it is queued within max_active_runs."""
    from airstep.runtime.clearing import Cleared, Selection, clear_run, tasks_to_clear

    selection = Selection(tuple(task or ()), upstream, downstream, only_failed)

    def act(store: MetadataStore, model: DagModel, record: RunRecord) -> Cleared:
        from airstep.runtime.store import RunKey

        task_ids = tasks_to_clear(model, selection, store.task_instances(RunKey(record.dag_id, record.run_id)))
        if dry_run:
            return Cleared(task_ids, None)
        return clear_run(store, record, task_ids, _now(), only_failed=only_failed)

    asked = {"tasks": list(task or ()), "upstream": upstream, "downstream": downstream, "only_failed": only_failed}
    _Rerun(act, stack, region, as_json, fast_retries, secrets_file, dry_run=dry_run, asked=asked).go(run_id, dag_id)


def runs_mark(
    run_id: str,
    state: Annotated[str, typer.Argument(help="success or failed")],
    task: Annotated[str, typer.Option("--task", help="the task to mark (every instance of it)")],
    dag_id: DagIdOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
    fast_retries: FastRetriesOption = False,
    secrets_file: SecretsOption = None,
) -> None:
    """Set a task of an ended run to success or failed, as Airflow's mark: the failed and
    upstream_failed tasks downstream of it are cleared and run again (the run state stays as it is
    when there are none)."""
    from airstep.runtime.clearing import MARKABLE, mark_task

    wanted = next((s for s in MARKABLE if s.value == state), None)
    if wanted is None:
        fail([f"mark: state must be success or failed, not {state!r}"])

    def act(store: MetadataStore, model: DagModel, record: RunRecord) -> Cleared:
        return mark_task(store, model, record, task, wanted, _now())

    asked = {"task": task, "state": wanted.value}
    marked = (task, wanted)
    _Rerun(act, stack, region, as_json, fast_retries, secrets_file, marked=marked, asked=asked).go(run_id, dag_id)


@dataclasses.dataclass(frozen=True)
class _Rerun:
    """A clear or mark (`act`) of a run, then the run run again: here, or queued in the stack. Every
    check that can refuse comes before `act` changes anything; a clear cut short (its run claimed,
    never started) is finished by the next clear of the run."""

    act: Callable[[MetadataStore, DagModel, RunRecord], Cleared]
    stack: str | None
    region: str | None
    as_json: bool
    fast_retries: bool
    secrets_file: Path | None
    dry_run: bool = dataclasses.field(default=False, kw_only=True)
    marked: tuple[str, TaskState] | None = dataclasses.field(default=None, kw_only=True)
    asked: dict[str, Any] = dataclasses.field(default_factory=dict, kw_only=True)  # the arguments, for the audit

    def go(self, run_id: str, dag_id: str | None) -> None:
        from airstep.runtime.clearing import ClearError

        try:
            if self.stack:
                cleared, record, outcome = self._in_stack(run_id, dag_id, self.stack)
            else:
                cleared, record, outcome = self._here(run_id, dag_id)
        except ClearError as exc:
            fail([str(exc)])
        except UserError as exc:
            fail(exc.lines)
        result = outcome.pop("result", None)
        if self.as_json:
            document = {"dag_id": record.dag_id, "run_id": record.run_id, "cleared": cleared.task_ids, **outcome}
            print(json.dumps(document | (result.to_json() if result else {}), indent=2))
        elif result is not None:
            print_table(result)
        elif outcome.get("state") == RunState.QUEUED.value:
            out.print(f"queued {record.run_id} (clear {outcome['clear_number']}): it starts when a slot frees")
        elif "execution_arn" in outcome:
            out.print(f"started {record.run_id} (clear {outcome['clear_number']}): {outcome['execution_arn']}")
        state = result.state.value if result else outcome.get("state")
        if state not in (None, RunState.SUCCESS.value, RunState.QUEUED.value, RunState.RUNNING.value):
            raise typer.Exit(1)

    def _announce(self, cleared: Cleared, record: RunRecord, resumed: bool = False) -> None:
        if self.as_json:
            return
        if self.marked and not resumed:
            out.print(f"marked {self.marked[0]} {self.marked[1].value} in {record.run_id}")
        names = ", ".join(cleared.task_ids)
        if resumed:
            verb = "would finish the clear that stopped half-way, of" if self.dry_run else "finished the clear of"
        else:
            verb = "would clear" if self.dry_run else "cleared"
        out.print(f"{verb} {len(cleared.task_ids)} task(s) of {record.run_id}" + (f": {names}" if names else ""))
        if cleared.run is None and not self.dry_run:
            out.print(f"nothing to run again: the run stays {record.state.value}")

    def _acted(self, store: MetadataStore, model: DagModel, record: RunRecord) -> Cleared:
        """`act`, or the clear of this run that stopped half-way, finished (what it cleared, not
        what is asked now: a mark waits for it)."""
        from airstep.runtime.clearing import Cleared, resume_clear

        if record.state is RunState.QUEUED and record.clear_number and record.clearing is not None:
            if self.marked:
                raise UserError(
                    [f"run {record.run_id!r} waits for a clear that stopped half-way: `airstep runs clear` it first"]
                )
            if self.dry_run:
                cleared = Cleared(list(record.clearing), None)
            else:
                cleared = resume_clear(store, record, _now()) or Cleared([], None)
            self._announce(cleared, record, resumed=True)
            return cleared
        cleared = self.act(store, model, record)
        self._announce(cleared, record)
        return cleared

    def _audit(self, target: Target | None, record: RunRecord, cleared: Cleared) -> None:
        """The record of the clear or mark just made (a dry run changes nothing: none)."""
        if self.dry_run:
            return
        cleared_ids = f"cleared {', '.join(cleared.task_ids)}" if cleared.task_ids else ""
        if self.marked:
            marked = f"marked {self.marked[0]} {self.marked[1].value}"
            action, outcome = AuditAction.MARK, f"{marked}, {cleared_ids}" if cleared_ids else marked
        else:
            action, outcome = AuditAction.CLEAR, cleared_ids or "nothing cleared"
        record_change(target, action, record.dag_id, record.run_id, outcome, self.asked)

    def _here(self, run_id: str, dag_id: str | None) -> tuple[Cleared, RunRecord, dict[str, Any]]:
        """In the local history; the run runs again here, on the DAG file as it is now."""
        from airstep.runtime.store import RunKey
        from airstep_compiler import CompileError, compile_dag
        from airstep_local.engine import LocalEngine, RunRequest

        if not LOCAL_STATE.exists():
            raise UserError(
                [f"no local runs here yet ({LOCAL_STATE} is missing): `airstep run` a DAG, or pass --stack"]
            )
        connections, variables = read_secrets(self.secrets_file) if self.secrets_file else ({}, {})
        with LocalEngine(state_file=LOCAL_STATE, load_state=True) as engine:
            record = find_run(engine.store, run_id, dag_id)
            dag = _deployed(engine.store, record, "here")
            loaded, models = load_one(dag.file, record.dag_id)  # the file as it is now, as Airflow's clear runs
            model, source = models[0], source_of(loaded)
            if not engine.store.task_instances(RunKey(record.dag_id, record.run_id)):
                raise UserError(
                    [
                        f"run {record.run_id!r}: only its record is left in the local history (it keeps each DAG's "
                        "newest 100 runs whole); run it again with `airstep run` or a backfill"
                    ]
                )
            recorded = record.dag_run()
            try:  # what could refuse the run, before anything changes
                model.resolve_params(recorded.conf if recorded else {})
                compile_dag(model, source)
            except ParamValidationError as exc:
                raise UserError([f"{dag.file}: DAG {model.dag_id!r}: {exc} (nothing cleared)"]) from None
            except CompileError as exc:
                raise UserError([f"{exc} (nothing cleared)"]) from None
            engine.seed_secrets(connections, variables)
            if triggers_runs(model):  # the folder's DAGs it may trigger run here too
                deploy_triggerable(engine, folder_dags(Path(dag.file).parent), self.fast_retries)
            cleared = self._acted(engine.store, model, record)
            self._audit(None, record, cleared)
            if cleared.run is None:
                return cleared, record, {}
            kept = {ti.label for ti in engine.store.task_instances(RunKey(record.dag_id, record.run_id)) if ti.state}
            reporter = Progress(model, kept) if not self.as_json else None
            with redirect_stdout(sys.stderr):  # task output is not the command's result
                (result,) = engine.run_many(
                    model,
                    source,
                    RunRequest(fast_retries=self.fast_retries, run=cleared.run),
                    [cleared.run],
                    1,
                    lambda _, *change: reporter and reporter(*change),
                )
                engine.triggered_results()  # (they end before the engine does)
        return cleared, record, {"clear_number": cleared.run.clear_number, "result": result}

    def _in_stack(self, run_id: str, dag_id: str | None, stack: str) -> tuple[Cleared, RunRecord, dict[str, Any]]:
        """In the stack's records; the run is queued there again (within max_active_runs)."""
        from airstep.contract import execution_name
        from airstep.runtime.admission import admit, slot_group
        from airstep.runtime.clearing import not_yet_rerunnable

        with open_target(stack, self.region) as target:
            record = find_run(target.store, run_id, dag_id)
            dag = _deployed(target.store, record, f"in stack {stack}")
            if dag.paused:
                raise UserError(
                    [f"DAG {dag.dag_id!r} is paused: `airstep dags unpause {dag.dag_id} --stack {stack}` first"]
                )
            resuming = record.state is RunState.QUEUED and record.clearing is not None
            if not resuming and (why := not_yet_rerunnable(target.sfn, record, datetime.now(UTC))):
                raise UserError([f"run {record.run_id!r}: {why}"])
            if resuming and _started(target.sfn, dag, execution_name(record.run_id, record.clear_number)):
                raise UserError([f"run {record.run_id!r}: clear {record.clear_number} has started already"])
            cleared = self._acted(target.store, deployed_model(dag, self.region), record)
            self._audit(target, record, cleared)
            if cleared.run is None:
                return cleared, record, {}
            limit = dag.max_active_runs if slot_group(cleared.run) == dag.dag_id else None  # a backfill's: its own
            admitted = admit(target.store, target.sfn, cleared.run, dag.state_machine_arn, limit)
        outcome: dict[str, Any] = {"clear_number": cleared.run.clear_number, "state": admitted.state.value}
        if admitted.state is not RunState.QUEUED and admitted.execution_arn:
            outcome["execution_arn"] = admitted.execution_arn
        return cleared, record, outcome


def pools_set(
    name: str,
    slots: Annotated[int, typer.Argument(help="how many task slots run at once")],
    description: Annotated[str, typer.Argument(help="what the pool protects")] = "",
    stack: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Create a pool or change its slots (Airflow's `airflow pools set`)."""
    from airstep.sdk.baseoperator import POOL_NAME

    if not POOL_NAME.fullmatch(name) or name == DEFAULT_POOL or name.startswith(RUN_POOL_PREFIX):
        fail(
            [
                f"pools set: {name!r} is not a pool airstep can limit "
                f"(1-256 printable characters; not {DEFAULT_POOL}, not starting {RUN_POOL_PREFIX!r})"
            ]
        )
    if slots < 1:
        fail([f"pools set: slots must be at least 1, got {slots}"])
    from airstep.runtime import pooling

    with _pools(stack, region) as (store, sfn):
        store.set_pool(name, slots, description)
        if sfn is not None:  # more slots: the tasks waiting for them start now
            pooling.wake(store, sfn, [name])
    out.print(f"pool {name}: {slots} slot(s)")


def pools_list(stack: StackOption = None, region: RegionOption = None, as_json: JsonOption = False) -> None:
    """The pools, their slots and the slots in use."""
    with _pools(stack, region) as (store, _):
        pools = [p.to_dict() for p in store.list_pools()]
    if as_json:
        print(json.dumps(pools, indent=2))
    elif pools:
        print_rows(pools, ("pool", "slots", "used", "description"))
    else:
        out.print("no pools (tasks without one are not limited)")


def pools_delete(name: str, stack: StackOption = None, region: RegionOption = None) -> None:
    """Delete a pool that no task is using."""
    if name.startswith(RUN_POOL_PREFIX):
        fail([f"pools delete: {name!r} is a run's own pool (max_active_tasks): it goes when its run ends"])
    with _pools(stack, region) as (store, _):
        if store.get_pool(name) is None:
            fail([f"pools delete: there is no pool {name!r}"])
        if not store.delete_pool(name):
            fail([f"pools delete: pool {name!r} has slots in use: delete it once its tasks have ended"])
    out.print(f"pool {name} deleted")


@contextmanager
def _pools(stack: str | None, region: str | None) -> Iterator[tuple[MetadataStore, Any]]:
    """The stack's store and Step Functions client, or the local store (created if this folder has no
    runs yet; no local run outlives its command, so nothing waits there)."""
    if stack:
        with open_target(stack, region) as target:
            yield target.store, target.sfn
        return
    from airstep_local.engine import LocalEngine

    with LocalEngine(state_file=LOCAL_STATE, load_state=True) as engine:
        yield engine.store, None


def _started(sfn: Any, dag: DagRecord, name: str) -> bool:
    """Whether the DAG's state machine has an execution of this name."""
    from botocore.exceptions import ClientError

    from airstep.contract import execution_arn

    try:
        sfn.describe_execution(executionArn=execution_arn(dag.state_machine_arn, name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise
    return True


def _deployed(store: MetadataStore, record: RunRecord, where: str) -> DagRecord:
    dag = store.get_dag(record.dag_id)
    if dag is None or dag.removed:
        raise UserError([f"run {record.run_id!r}: its DAG {record.dag_id!r} is no longer deployed {where}"])
    return dag


def _now() -> str:
    return datetime.now(UTC).isoformat()
