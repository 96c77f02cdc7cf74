"""The metadata store: runs, task-instance tries, return values and gates in one DynamoDB table.

Every state change is one conditional write, so a duplicate or late writer never moves a record
backwards. Keys (single-table design)::

    pk = DAG#<dag_id>            sk = DAG                      a deployed DAG (file, version, machine)
    pk = FILE#<s3 uri>           sk = IMPORT_ERROR             why a DAG file could not be loaded
    pk = RUN#<dag_id>#<run_id>   sk = RUN                      the run (tracked from execution events)
                                 sk = TI#<task_id>#<map_index>  a task instance (latest try) and its
                                                                return value (`xcom`, JSON text)
                                 sk = GATE#<task_id>            a gate's token and arrived upstreams

Access patterns (global secondary indexes, see TABLE_SCHEMA):

    gsi1  DAG#<dag_id> / RUN#<start>#<run_id>   runs of a DAG, newest first; latest run per DAG
          DAGS / <dag_id>, IMPORT_ERRORS / <file>  all DAGs; all import errors
    gsi2  STATE#<state> / <end or start>#...      e.g. failed runs in a time window
    gsi3  RUNID#<run_id>                          a run by its run_id alone
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from airstep.runtime.constants import TABLE_NAME_ENV
from airstep.runtime.errors import XComTooLarge
from airstep.runtime.states import FINISHED, TaskState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A DynamoDB item holds 400 KB; larger values will be offloaded to S3 (planned).
MAX_XCOM_BYTES = 350_000
MAX_ERROR_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class RunKey:
    dag_id: str
    run_id: str

    @property
    def pk(self) -> str:
        return f"RUN#{self.dag_id}#{self.run_id}"


@dataclass(frozen=True, slots=True)
class TaskInstance:
    """The latest try of one task instance, as stored."""

    task_id: str
    map_index: int
    state: str
    try_number: int
    start: str | None
    end: str | None
    duration: float | None
    error: str | None
    xcom: str | None = None  # the return value as JSON text, when read with values

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "map_index": self.map_index,
            "state": self.state,
            "try_number": self.try_number,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class GateStatus:
    token: str | None
    wait_for: frozenset[str]
    arrived: frozenset[str]

    @property
    def open(self) -> bool:
        return self.token is not None and bool(self.wait_for) and self.wait_for <= self.arrived


class MetadataStore:
    """Reads and writes run metadata. Pass `client` (tests, local engine) or let it build one."""

    def __init__(self, table_name: str | None = None, *, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name or os.environ[TABLE_NAME_ENV]
        self.client = client or boto3.client("dynamodb")
        self._finished = _FinishedInstances()

    # -- runs ---------------------------------------------------------------------------------
    def track_execution(
        self,
        run: RunKey,
        *,
        status: str,
        state: str,
        execution_arn: str,
        start: str | None,
        end: str | None,
        error: str | None,
        run_input: dict[str, Any],
    ) -> bool:
        """Apply an execution status (RUNNING < final) unless a later one is already recorded."""
        rank = 1 if status == "RUNNING" else 2
        values: dict[str, Any] = {
            ":rank": {"N": str(rank)},
            ":status": {"S": status},
            ":state": {"S": state},
            ":arn": {"S": execution_arn},
            ":dag": {"S": run.dag_id},
            ":run": {"S": run.run_id},
            ":rt": {"S": str(run_input.get("run_type", "manual"))},
            ":g1pk": {"S": f"DAG#{run.dag_id}"},
            ":g2pk": {"S": f"STATE#{state}"},
            ":g2sk": {"S": f"{end or start or ''}#{run.dag_id}#{run.run_id}"},
            ":g3pk": {"S": f"RUNID#{run.run_id}"},
        }
        update = (
            "SET exec_rank = :rank, exec_status = :status, #s = :state, execution_arn = :arn, dag_id = :dag, "
            "run_id = :run, run_type = :rt, gsi1pk = :g1pk, gsi2pk = :g2pk, gsi2sk = :g2sk, gsi3pk = :g3pk"
        )
        optional = {
            "logical_date": run_input.get("logical_date"),
            "start_date": start,
            "end_date": end,
            "#e": error[:MAX_ERROR_CHARS] if error else None,
            "gsi1sk": f"RUN#{start}#{run.run_id}" if start else None,
        }
        if start and end:
            optional["#d"] = _seconds_between(start, end)
        for i, (name, value) in enumerate(optional.items()):
            if value is not None:
                update += f", {name} = :o{i}"
                values[f":o{i}"] = {"N": repr(value)} if isinstance(value, float) else {"S": value}
        condition = "(attribute_not_exists(exec_rank) OR exec_rank < :rank)"
        if rank == 1:  # never move a run that its finalize step already ended back to running
            condition += " AND (attribute_not_exists(#s) OR #s = :state)"
        return self._update(run.pk, "RUN", update, values, condition=condition)

    def finish_run(self, run: RunKey, state: str, end: str) -> bool:
        """The finalize step's verdict: set the run's final state once (a duplicate changes nothing)."""
        return self._update(
            run.pk,
            "RUN",
            "SET #s = :state, dag_id = :dag, run_id = :run, gsi2pk = :g2pk, gsi2sk = :g2sk, gsi3pk = :g3pk",
            {
                ":state": {"S": state},
                ":running": {"S": "running"},
                ":dag": {"S": run.dag_id},
                ":run": {"S": run.run_id},
                ":g2pk": {"S": f"STATE#{state}"},
                ":g2sk": {"S": f"{end}#{run.dag_id}#{run.run_id}"},
                ":g3pk": {"S": f"RUNID#{run.run_id}"},
            },
            condition="attribute_not_exists(#s) OR #s = :running",
        )

    def runs_of_dag(self, dag_id: str, limit: int = 25) -> list[dict[str, Any]]:
        """Runs of a DAG, newest first (by start date)."""
        return self._query_index(
            "gsi1", "gsi1pk", f"DAG#{dag_id}", begins_with=("gsi1sk", "RUN#"), limit=limit, newest_first=True
        )

    def runs_in_state(self, state: str, since: str, until: str, limit: int = 100) -> list[dict[str, Any]]:
        """Runs in `state` whose end (or start) lies in [since, until], ISO-8601 UTC."""
        return self._query_index(
            "gsi2", "gsi2pk", f"STATE#{state}", between=("gsi2sk", since, until + "~"), limit=limit
        )

    def find_runs(self, run_id: str) -> list[dict[str, Any]]:
        """Runs with this run_id (in any DAG)."""
        return self._query_index("gsi3", "gsi3pk", f"RUNID#{run_id}", limit=100)

    def _query_index(
        self,
        index: str,
        pk_name: str,
        pk: str,
        *,
        begins_with: tuple[str, str] | None = None,
        between: tuple[str, str, str] | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        condition = f"{pk_name} = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
        if begins_with:
            condition += f" AND begins_with({begins_with[0]}, :prefix)"
            values[":prefix"] = {"S": begins_with[1]}
        if between:
            condition += f" AND {between[0]} BETWEEN :lo AND :hi"
            values[":lo"], values[":hi"] = {"S": between[1]}, {"S": between[2]}
        items = self.client.query(
            TableName=self.table_name,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=not newest_first,
            Limit=limit,
        )["Items"]
        return [_plain(item) for item in items]

    def get_run(self, run: RunKey) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table_name, Key=_key(run.pk, "RUN"), ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    # -- DAGs and import errors -----------------------------------------------------------------
    def put_dag(self, dag_id: str, record: dict[str, Any]) -> None:
        """Create or replace a DAG's record (what the compile function deployed)."""
        item = {"pk": {"S": f"DAG#{dag_id}"}, "sk": {"S": "DAG"}, "gsi1pk": {"S": "DAGS"}, "gsi1sk": {"S": dag_id}}
        item["dag_id"] = {"S": dag_id}
        item["record"] = {"S": json.dumps(record, sort_keys=True)}
        self.client.put_item(TableName=self.table_name, Item=item)

    def get_dag(self, dag_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table_name, Key=_key(f"DAG#{dag_id}", "DAG"), ConsistentRead=True)
        return json.loads(item["Item"]["record"]["S"]) if "Item" in item else None

    def list_dags(self) -> list[dict[str, Any]]:
        return [json.loads(item["record"]) for item in self._query_all_index("gsi1", "gsi1pk", "DAGS")]

    def put_import_error(self, file: str, record: dict[str, Any]) -> None:
        item = {"pk": {"S": f"FILE#{file}"}, "sk": {"S": "IMPORT_ERROR"}, "gsi1pk": {"S": "IMPORT_ERRORS"}}
        item["gsi1sk"] = {"S": file}
        item["record"] = {"S": json.dumps(record, sort_keys=True)}
        self.client.put_item(TableName=self.table_name, Item=item)

    def clear_import_error(self, file: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=_key(f"FILE#{file}", "IMPORT_ERROR"))

    def list_import_errors(self) -> list[dict[str, Any]]:
        return [json.loads(item["record"]) for item in self._query_all_index("gsi1", "gsi1pk", "IMPORT_ERRORS")]

    def _query_all_index(self, index: str, pk_name: str, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": f"{pk_name} = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(_plain(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- task instances -------------------------------------------------------------------------
    def begin_try(self, run: RunKey, task_id: str, now: str, map_index: int = -1) -> int | None:
        """Start the next try of a task instance; returns its try number, or None if already finished."""
        key = _key(run.pk, _ti_sk(task_id, map_index))
        try:  # the first try creates the item: one plain put, no update expression to evaluate
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    **key,
                    "state": {"S": TaskState.RUNNING.value},
                    "start_date": {"S": now},
                    "try_number": {"N": "1"},
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
            return 1
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET #s = :running, start_date = :now ADD try_number :one",
                ConditionExpression="attribute_not_exists(fin)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":running": {"S": TaskState.RUNNING.value},
                    ":now": {"S": now},
                    ":one": {"N": "1"},
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return int(response["Attributes"]["try_number"]["N"])

    def end_try(
        self,
        run: RunKey,
        task_id: str,
        try_number: int,
        state: TaskState,
        start: str,
        now: str,
        error: str | None = None,
        map_index: int = -1,
        xcom_json: str | None = None,
    ) -> bool:
        """Close try `try_number` (begun at `start`) if it is still the running one: a late,
        timed-out try changes nothing.

        A task instance item holds only its latest try, so the try is written whole (one conditional
        put). `xcom_json` (from `encode_xcom`) is the return value, stored with the task instance.
        """
        item: dict[str, Any] = {
            **_key(run.pk, _ti_sk(task_id, map_index)),
            "state": {"S": state.value},
            "try_number": {"N": str(try_number)},
            "start_date": {"S": start},
            "end_date": {"S": now},
        }
        if state in FINISHED:
            item["fin"] = {"BOOL": True}
        if error is not None:
            item["error"] = {"S": error[:MAX_ERROR_CHARS]}
        if xcom_json is not None:
            item["xcom"] = {"S": xcom_json}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="try_number = :try AND #s = :running",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":try": {"N": str(try_number)}, ":running": {"S": TaskState.RUNNING.value}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def finish_unfinished(
        self, run: RunKey, task_id: str, state: TaskState, now: str, error: str | None = None, map_index: int = -1
    ) -> bool:
        """Give a task instance a final state unless it has one (skips, upstream failures, crashed tries)."""
        values: dict[str, Any] = {":state": {"S": state.value}, ":now": {"S": now}, ":fin": {"BOOL": True}}
        update = "SET #s = :state, end_date = :now, fin = :fin"
        if error is not None:
            update += ", #e = :err"
            values[":err"] = {"S": error[:MAX_ERROR_CHARS]}
        return self._update(run.pk, _ti_sk(task_id, map_index), update, values, condition="attribute_not_exists(fin)")

    def task_instances(self, run: RunKey) -> list[TaskInstance]:
        """Every task instance of a run (one paginated query)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :ti)",
            "ExpressionAttributeValues": {":pk": {"S": run.pk}, ":ti": {"S": "TI#"}},
            "ProjectionExpression": _LISTING,
            "ExpressionAttributeNames": _LISTING_NAMES,
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [_task_instance(item) for item in items]

    def get_task_instances(self, run: RunKey, task_ids: list[str]) -> dict[str, TaskInstance]:
        """The given tasks' instances (unmapped) with their return values, by task_id (one batch read).

        Finished instances never change, so each is read once per process: the tasks of a fan-out
        that a warm task runner serves share one read of their upstream."""
        found = {t: ti for t in task_ids if (ti := self._finished.get(run.pk, t)) is not None}
        missing = [t for t in task_ids if t not in found]
        for item in self._batch_get(run, [_ti_sk(t, -1) for t in missing]):
            ti = _task_instance(item)
            found[ti.task_id] = ti
            if ti.state in FINISHED:
                self._finished.add(run.pk, ti)
        return found

    def get_xcoms(self, run: RunKey, task_ids: list[str]) -> dict[str, Any]:
        """Return values of the given tasks, by task_id; a task that returned nothing is absent."""
        return {
            task_id: json.loads(ti.xcom)
            for task_id, ti in self.get_task_instances(run, task_ids).items()
            if ti.xcom is not None
        }

    # -- gates --------------------------------------------------------------------------------
    def gate_register(self, run: RunKey, task_id: str, token: str, wait_for: list[str]) -> GateStatus:
        response = self.client.update_item(
            TableName=self.table_name,
            Key=_key(run.pk, f"GATE#{task_id}"),
            UpdateExpression="SET #t = :token, wait_for = :wait",
            ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues={":token": {"S": token}, ":wait": {"SS": sorted(set(wait_for))}},
            ReturnValues="ALL_NEW",
        )
        return _gate(response["Attributes"])

    def gate_arrive(self, run: RunKey, task_id: str, upstream_id: str) -> GateStatus:
        response = self.client.update_item(
            TableName=self.table_name,
            Key=_key(run.pk, f"GATE#{task_id}"),
            UpdateExpression="ADD arrived :up",
            ExpressionAttributeValues={":up": {"SS": [upstream_id]}},
            ReturnValues="ALL_NEW",
        )
        return _gate(response["Attributes"])

    # -- helpers ------------------------------------------------------------------------------
    def _update(self, pk: str, sk: str, update: str, values: dict[str, Any], *, condition: str | None = None) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(pk, sk),
            "UpdateExpression": update,
            "ExpressionAttributeValues": values,
        }
        names = {
            n: v
            for n, v in (("#s", "state"), ("#e", "error"), ("#d", "duration"))
            if n in update or (condition and n in condition)
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            self.client.update_item(**kwargs)
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def _batch_get(self, run: RunKey, sort_keys: list[str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(sort_keys))
        for start in range(0, len(unique), 100):
            request = {
                self.table_name: {
                    "Keys": [_key(run.pk, sk) for sk in unique[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                items.extend(response["Responses"].get(self.table_name, []))
                request = response.get("UnprocessedKeys") or {}
        return items


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def _index(name: str, *keys: str) -> dict[str, Any]:
    schema = [{"AttributeName": key, "KeyType": kind} for key, kind in zip(keys, ("HASH", "RANGE"))]
    return {"IndexName": name, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}}


TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk")
    ],
    "GlobalSecondaryIndexes": [
        _index("gsi1", "gsi1pk", "gsi1sk"),
        _index("gsi2", "gsi2pk", "gsi2sk"),
        _index("gsi3", "gsi3pk"),
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
"""The metadata table's keys and indexes (template.yaml declares the same; a test compares them)."""


def create_table(client: Any, table_name: str) -> None:
    """Create the metadata table (local engine and tests; AWS gets it from template.yaml)."""
    client.create_table(TableName=table_name, **TABLE_SCHEMA)


class _FinishedInstances:
    """A bounded, thread-safe memo of finished task instances (immutable once finished: every write
    to a task instance is conditional on it not being finished). Large return values are not kept."""

    MAX_ENTRIES = 2_048
    MAX_XCOM_CHARS = 64_000

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, str], TaskInstance] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pk: str, task_id: str) -> TaskInstance | None:
        with self._lock:
            return self._entries.get((pk, task_id))

    def add(self, pk: str, ti: TaskInstance) -> None:
        if ti.xcom is not None and len(ti.xcom) > self.MAX_XCOM_CHARS:
            return
        with self._lock:
            self._entries[(pk, ti.task_id)] = ti
            if len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _ti_sk(task_id: str, map_index: int) -> str:
    return f"TI#{task_id}#{map_index}"


def encode_xcom(task_id: str, value: Any) -> str:
    """A return value as stored: compact JSON, refused with a clear error past the size limit."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise XComTooLarge(f"return value of task {task_id!r} is not JSON-serialisable: {exc}") from None
    size = len(text.encode())
    if size > MAX_XCOM_BYTES:
        raise XComTooLarge(
            f"return value of task {task_id!r} is {size:,} bytes as JSON; "
            f"the limit is {MAX_XCOM_BYTES:,} bytes (offloading to S3 is planned)"
        )
    return text


_ERROR_STATES = {TaskState.FAILED.value, TaskState.UP_FOR_RETRY.value}
_LISTING_NAMES = {"#s": "state", "#e": "error"}
_LISTING = "sk, #s, try_number, start_date, end_date, #e"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typed in item.items():
        ((kind, value),) = typed.items()
        out[name] = float(value) if kind == "N" else set(value) if kind == "SS" else value
    return out


def _task_instance(item: dict[str, Any]) -> TaskInstance:
    """A stored task instance; end, duration and error belong to a try only once it has ended."""
    data = _plain(item)
    _, task_id, map_index = data["sk"].rsplit("#", 2)
    ended = data["state"] != TaskState.RUNNING.value
    return TaskInstance(
        task_id=task_id,
        map_index=int(map_index),
        state=data["state"],
        try_number=int(data.get("try_number", 0)),
        start=data.get("start_date"),
        end=data.get("end_date") if ended else None,
        duration=_seconds_between(data["start_date"], data["end_date"])
        if ended and "start_date" in data and "end_date" in data
        else None,
        error=data.get("error") if data["state"] in _ERROR_STATES else None,
        xcom=data.get("xcom"),
    )


def _gate(attributes: dict[str, Any]) -> GateStatus:
    return GateStatus(
        token=attributes.get("token", {}).get("S"),
        wait_for=frozenset(attributes.get("wait_for", {}).get("SS", [])),
        arrived=frozenset(attributes.get("arrived", {}).get("SS", [])),
    )
