"""Runs: one item per run, kept true by the run tracker (status events) and the finalize step."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airstep.contract import DagRun
from airstep.runtime.store import schema
from airstep.runtime.store.codec import Table, key, plain, string, typed
from airstep.runtime.usage import (
    ADD_USAGE,
    USAGE_MB_MS,
    USAGE_REQUESTS,
    LambdaUsage,
    Transitions,
    carried_usage,
    usage_values,
)
from airstep.states import TRIGGERED_BY, RunState, RunType

MAX_ERROR_CHARS = 2_000
_RUNNING_RANK, _FINAL_RANK = 1, 2  # an execution status never moves back to a lower rank
_QUEUED = {
    "ExpressionAttributeNames": {"#state": "state"},
    "ExpressionAttributeValues": {":queued": typed(RunState.QUEUED.value)},
}


@dataclass(frozen=True, slots=True)
class RunKey:
    dag_id: str
    run_id: str
    clear_number: int = 0  # which execution of the run reads (finished instances change only at a clear)

    @property
    def pk(self) -> str:
        return schema.run_pk(self.dag_id, self.run_id)

    @property
    def memo_key(self) -> str:
        """What a process remembers finished instances under: a clear finishes them anew."""
        return f"{self.pk}#{self.clear_number}"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored."""

    dag_id: str
    run_id: str
    state: RunState
    run_type: str | None = None
    logical_date: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    duration: float | None = None
    error: str | None = None
    execution_arn: str | None = None
    exec_status: str | None = None
    clear_number: int = 0
    queued_at: str | None = None
    run_input: str | None = None  # the run as its execution received it (DagRun.to_input, JSON): what a clear reruns
    clearing: tuple[str, ...] | None = None  # the tasks its latest clear resets (None: never cleared)
    clearing_only: tuple[str, ...] | None = None  # ... only their instances in these states (--only-failed)
    marking: str | None = None  # "<task_id> <state>": the mark that clear comes from
    transitions: Transitions | None = None  # its executions' state transitions, once each has ended
    finished_at: str | None = None  # when its finalize step gave its verdict (before its end is tracked)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RunRecord:
        data = plain(item)
        return cls(
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            state=RunState(data["state"]),
            run_type=data.get("run_type"),
            logical_date=data.get("logical_date"),
            start_date=data.get("start_date"),
            end_date=data.get("end_date"),
            duration=data.get("duration"),
            error=data.get("error"),
            execution_arn=data.get("execution_arn"),
            exec_status=data.get("exec_status"),
            clear_number=int(data.get("clear_number", 0)),
            queued_at=data.get("queued_at"),
            run_input=data.get("run_input"),
            clearing=tuple(json.loads(data["clearing"])) if "clearing" in data else None,
            clearing_only=tuple(json.loads(data["clearing_only"])) if "clearing_only" in data else None,
            marking=data.get("marking"),
            finished_at=data.get("finished_at"),
            transitions=(
                Transitions(int(data["transitions"]), bool(data.get("transitions_estimated")))
                if "transitions" in data
                else None
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        hidden = ("run_input", "clearing", "clearing_only", "marking", "transitions", "finished_at")
        data = {name: getattr(self, name) for name in self.__slots__ if name not in hidden}  # type: ignore[attr-defined]
        data["triggered_by"] = self.triggered_by
        run = self.dag_run()
        if run is not None and run.triggering_asset_events:
            data["triggering_asset_events"] = list(run.triggering_asset_events)
        if run is not None and run.triggering_task:
            data["triggering_task"] = run.triggering_task
        return data

    def usage(self, lambda_usage: LambdaUsage) -> dict[str, Any]:
        """What the run has used of what AWS bills per run, with its Lambda usage (RunRecords.lambda_usage;
        airstep_cli.prices prices it)."""
        return {
            "transitions": self.transitions.count if self.transitions else None,
            "transitions_estimated": bool(self.transitions and self.transitions.estimated),
            "lambda_requests": lambda_usage.requests,
            "lambda_gb_seconds": round(lambda_usage.gb_seconds, 6),
        }

    @property
    def triggered_by(self) -> str | None:
        """What started the run, in Airflow's words (DagRunTriggeredByType)."""
        kind = TRIGGERED_BY.get(RunType(self.run_type)) if self.run_type in tuple(RunType) else None
        return kind.value if kind else None

    @property
    def ended(self) -> bool:
        return self.state in (RunState.SUCCESS, RunState.FAILED)

    def dag_run(self) -> DagRun | None:
        """The run as its executions receive it (None for a record from before runs kept it)."""
        if self.run_input is None:
            return None
        return dataclasses.replace(DagRun.from_input(json.loads(self.run_input)), clear_number=self.clear_number)


def seconds_between(start: str, end: str) -> float:
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


class RunRecords:
    table: Table

    def track_execution(
        self,
        run: DagRun,
        *,
        status: str,
        state: RunState,
        execution_arn: str,
        start: str | None,
        end: str | None,
        error: str | None,
    ) -> bool:
        """Apply an execution status (RUNNING < final) unless a later one is already recorded."""
        rank = _RUNNING_RANK if status == "RUNNING" else _FINAL_RANK
        fields: dict[str, Any] = {
            "exec_rank": rank,
            "exec_status": status,
            "state": state.value,
            "execution_arn": execution_arn,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "run_type": run.run_type.value,
            "gsi1pk": schema.dag_pk(run.dag_id),
            "gsi3pk": schema.run_id_pk(run.run_id),
            "logical_date": run.logical_date.isoformat() if run.logical_date else None,
            "start_date": start,
            "end_date": end,
            "error": error[:MAX_ERROR_CHARS] if error else None,
            "gsi1sk": schema.run_started_sk(start, run.run_id) if start else None,
            "duration": seconds_between(start, end) if start and end else None,
            "clear_number": run.clear_number,
            "run_input": _run_input(run),
        }
        # While its execution runs, a run is listed as active (a sparse index) for the reconciler.
        active = {"gsi2pk": schema.ACTIVE_RUNS, "gsi2sk": f"{start}#{run.dag_id}#{run.run_id}"} if start else {}
        fields.update(active if rank == _RUNNING_RANK else {})
        removed = () if rank == _RUNNING_RANK else ("gsi2pk", "gsi2sk")
        # an earlier execution of a run cleared since changes nothing
        condition = "(attribute_not_exists(exec_rank) OR exec_rank < :rank)"
        condition += " AND (attribute_not_exists(clear_number) OR clear_number = :clear)"
        values = {":rank": typed(rank), ":clear": typed(run.clear_number)}
        if rank == _RUNNING_RANK:  # never move a run that its finalize step already ended back to running
            condition += " AND (attribute_not_exists(#state) OR #state = :state OR #state = :queued)"
            values[":state"] = typed(state.value)
            values[":queued"] = typed(RunState.QUEUED.value)
        return self._set(RunKey(run.dag_id, run.run_id), fields, condition, values, removed)

    def add_transitions(self, run: RunKey, execution_arn: str, transitions: Transitions) -> bool:
        """Add an ended execution's transitions to its run's, once per execution (whatever clear the
        run is at by then); False if they were added before."""
        update = "ADD transitions :count, counted :arn"
        if transitions.estimated:
            update += " SET transitions_estimated = :yes"
        return (
            self.table.update(
                key(run.pk, schema.RUN_SK),
                update,
                condition="attribute_exists(#state) AND NOT contains(counted, :one)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":count": typed(transitions.count),
                    ":arn": {"SS": [execution_arn]},
                    ":one": string(execution_arn),
                    **({":yes": typed(True)} if transitions.estimated else {}),
                },
            )
            is not None
        )

    def add_lambda_usage(self, run: RunKey, usage: LambdaUsage, shard: int) -> None:
        """Add the Lambda usage of an invocation that wrote no record of its own (an expand step, the
        finalize step...) to one of the run's small usage items; a task's try, a settled task and a
        gate carry theirs on their own records."""
        self.table.update(
            key(run.pk, f"{schema.USAGE_PREFIX}{shard % schema.USAGE_SHARDS}"),
            f"SET expires_at = :expires {ADD_USAGE}",
            ExpressionAttributeValues={":expires": self.table.expires_at(), **usage_values(usage)},
        )

    def lambda_usage(self, run: RunKey) -> LambdaUsage:
        """The run's Lambda usage so far: what its items carry (its task instances and usage items)."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ProjectionExpression=f"{USAGE_REQUESTS}, {USAGE_MB_MS}",
            ExpressionAttributeValues={":pk": string(run.pk)},
        )
        return carried_usage(items)

    def queue_run(self, run: DagRun, now: str) -> bool:
        """Record a run waiting for a slot (listed among the DAG's runs by when it was queued); False if
        the run has a record already."""
        fields = {
            "state": RunState.QUEUED.value,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "run_type": run.run_type.value,
            "gsi1pk": schema.dag_pk(run.dag_id),
            "gsi1sk": schema.run_started_sk(now, run.run_id),
            "gsi3pk": schema.run_id_pk(run.run_id),
            "logical_date": run.logical_date.isoformat() if run.logical_date else None,
            "queued_at": now,
            "clear_number": run.clear_number,
            "run_input": _run_input(run),
        }
        return self._set(RunKey(run.dag_id, run.run_id), fields, "attribute_not_exists(#state)", {})

    def claim_clear(
        self,
        run: DagRun,
        task_ids: list[str],
        only: list[str] | None,
        marking: str | None,
        now: str,
    ) -> bool:
        """Claim an ended run for a clear (before any instance changes): it waits to run again, as
        `run` (its clear_number one on), queued with no start yet as in Airflow, and records what the
        clear resets so that a clear cut short is finished by the next. False unless the run had
        ended as the clear before."""
        fields = {
            "state": RunState.QUEUED.value,
            "clear_number": run.clear_number,
            "queued_at": now,
            "run_input": _run_input(run),
            "run_type": run.run_type.value,
            "clearing": json.dumps(task_ids),
            "clearing_only": json.dumps(only) if only is not None else None,
            "marking": marking,
        }
        clear_number = run.clear_number
        condition = "(#state = :success OR #state = :failed) AND "
        condition += "(attribute_not_exists(clear_number) OR clear_number = :previous)"
        values = {
            ":success": typed(RunState.SUCCESS.value),
            ":failed": typed(RunState.FAILED.value),
            ":previous": typed(clear_number - 1),
        }
        removed = [
            "exec_rank",
            "exec_status",
            "start_date",
            "end_date",
            "duration",
            "error",
            "gsi2pk",
            "gsi2sk",
            "finished_at",
        ]
        removed += [name for name in ("clearing_only", "marking") if fields[name] is None]
        return self._set(RunKey(run.dag_id, run.run_id), fields, condition, values, tuple(removed))

    def fail_queued_run(self, run: DagRun, error: str, now: str) -> bool:
        """A queued run that can never start ends failed, with why."""
        fields = {"state": RunState.FAILED.value, "error": error[:MAX_ERROR_CHARS], "end_date": now}
        return self._set(
            RunKey(run.dag_id, run.run_id), fields, "#state = :queued", dict(_QUEUED["ExpressionAttributeValues"])
        )

    def forget_queued_run(self, run: RunKey) -> None:
        """Delete the record of a run that never started (a newer scheduled run superseded it)."""
        self.table.delete(key(run.pk, schema.RUN_SK), condition="#state = :queued", **_QUEUED)

    def finish_run(self, run: RunKey, state: RunState, now: str, execution_arn: str | None = None) -> bool:
        """The finalize step's verdict: set the run's final state once (a duplicate changes nothing,
        nor does an execution from before the run's latest clear: `run.clear_number`). The run stays
        listed as active until its execution's final status is applied: if that event is lost, the
        reconciler finds the run there."""
        fields = {
            "state": state.value,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "gsi3pk": schema.run_id_pk(run.run_id),
            "gsi2pk": schema.ACTIVE_RUNS,
            "gsi2sk": f"{now}#{run.dag_id}#{run.run_id}",
            "execution_arn": execution_arn,
            "finished_at": now,
        }
        condition = "(attribute_not_exists(#state) OR #state = :running)"
        condition += " AND (attribute_not_exists(clear_number) OR clear_number = :clear)"
        values = {":running": typed(RunState.RUNNING.value), ":clear": typed(run.clear_number)}
        return self._set(run, fields, condition, values)

    def active_runs(self, started_before: str) -> list[RunRecord]:
        """Runs whose execution has not been seen ending, started before `started_before` (ISO-8601)."""
        items = self.table.query(
            IndexName=schema.ACTIVE_RUNS_INDEX,
            KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
            ExpressionAttributeValues={":pk": string(schema.ACTIVE_RUNS), ":before": string(started_before)},
        )
        return [RunRecord.from_item(item) for item in items]

    def runs_of_dag(self, dag_id: str, limit: int = 25) -> list[RunRecord]:
        """Runs of a DAG, newest first (by start date)."""
        items = self.table.query(
            IndexName=schema.LISTING_INDEX,
            KeyConditionExpression="gsi1pk = :pk AND begins_with(gsi1sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": string(schema.dag_pk(dag_id)),
                ":prefix": string(schema.RUN_STARTED_PREFIX),
            },
            ScanIndexForward=False,
            limit=limit,
        )
        return [RunRecord.from_item(item) for item in items]

    def find_runs(self, run_id: str) -> list[RunRecord]:
        """Runs with this run_id (in any DAG)."""
        items = self.table.query(
            IndexName=schema.RUN_ID_INDEX,
            KeyConditionExpression="gsi3pk = :pk",
            ExpressionAttributeValues={":pk": string(schema.run_id_pk(run_id))},
        )
        return [RunRecord.from_item(item) for item in items]

    def get_run(self, run: RunKey) -> RunRecord | None:
        item = self.table.get(key(run.pk, schema.RUN_SK))
        return RunRecord.from_item(item) if item else None

    def runs_at(self, dag_id: str, logical_dates: list[datetime]) -> dict[str, RunRecord]:
        """The DAG's runs at these logical dates, by logical date (ISO-8601); of several runs at one
        date, the latest started (batch reads of the run ids each kind of run would have)."""
        keys = [
            key(RunKey(dag_id, f"{kind}__{when.isoformat()}").pk, schema.RUN_SK)
            for when in logical_dates
            for kind in RunType
        ]
        records = sorted((RunRecord.from_item(item) for item in self.table.batch_get(keys)), key=_started)
        return {record.logical_date: record for record in records if record.logical_date}

    def find_run_at(self, dag_id: str, logical_date: datetime) -> RunRecord | None:
        """The DAG's run at `logical_date`, scheduled or manual (one batch read of their run ids;
        as in Airflow, a DAG has at most one run per logical date)."""
        keys = [key(RunKey(dag_id, f"{kind}__{logical_date.isoformat()}").pk, schema.RUN_SK) for kind in RunType]
        found = sorted((RunRecord.from_item(item) for item in self.table.batch_get(keys)), key=lambda r: r.run_id)
        return found[0] if found else None

    def _set(
        self,
        run: RunKey,
        fields: dict[str, Any],
        condition: str,
        values: dict[str, Any],
        removed: tuple[str, ...] = (),
    ) -> bool:
        """SET every field that has a value and REMOVE `removed`, if `condition` holds (it may name the
        state as #state)."""
        assigned = [(name, value) for name, value in fields.items() if value is not None]
        names = {f"#a{i}": name for i, (name, _) in enumerate(assigned)}
        if "#state" in condition:
            names["#state"] = "state"
        values = {**values, **{f":a{i}": typed(value) for i, (_, value) in enumerate(assigned)}}
        update = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(assigned))) + ", expires_at = :expires"
        if removed:
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        values[":expires"] = self.table.expires_at()
        updated = self.table.update(
            key(run.pk, schema.RUN_SK),
            update,
            condition=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return updated is not None


def _run_input(run: DagRun) -> str:
    data = run.to_input()
    data.pop("clear_number", None)  # the record's own field says which clear runs
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _started(record: RunRecord) -> str:
    return record.start_date or ""
