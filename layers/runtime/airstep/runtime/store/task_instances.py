"""Task instances: the latest try of each task of a run, its return value, and the tries it has had.

Every write is conditional: a try starts only if the instance is not finished, and ends only if it is
still the running try, so a late or duplicate writer never moves an instance backwards, and a finished
instance never changes (which lets a warm runner read each one once).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from airstep.contract import XCOM_RETURN_KEY
from airstep.runtime.store import schema
from airstep.runtime.store.codec import EXPIRES_AT, Item, Table, key, plain, string
from airstep.runtime.store.runs import MAX_ERROR_CHARS, RunKey, seconds_between
from airstep.runtime.usage import ADD_USAGE, USAGE_MB_MS, USAGE_REQUESTS, LambdaUsage, carried_usage, usage_values
from airstep.runtime.xcoms import decode_xcoms
from airstep.states import FINISHED, TaskState

_ERROR_STATES = frozenset({TaskState.FAILED, TaskState.UP_FOR_RETRY})
MAX_RENDERED_MAP_INDEX_CHARS = 250  # Airflow's column
_LISTING_NAMES = {"#s": "state", "#e": "error"}
_LISTING = "sk, #s, try_number, start_date, end_date, #e, rendered_map_index"
MAX_KEPT_TRIES = 100  # an instance's tries kept for its history (Airflow's TaskInstanceHistory): its first ones


@dataclass(frozen=True, slots=True)
class EndedTry:
    """One ended try of a task instance, as its history keeps it."""

    try_number: int
    state: TaskState
    start: str
    end: str

    def to_dict(self) -> dict[str, Any]:
        return {"try_number": self.try_number, "state": self.state.value, "start": self.start, "end": self.end}

    def to_item(self) -> Item:
        return {
            "M": {
                "n": {"N": str(self.try_number)},
                "s": string(self.state.value),
                "b": string(self.start),
                "e": string(self.end),
            }
        }

    @classmethod
    def from_item(cls, value: Item) -> EndedTry:
        fields = value["M"]
        return cls(int(fields["n"]["N"]), TaskState(fields["s"]["S"]), fields["b"]["S"], fields["e"]["S"])


def instance_label(task_id: str, map_index: int) -> str:
    """How Airflow names an instance: `task_id`, or `task_id[map_index]` for a mapped one."""
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


@dataclass(frozen=True, slots=True)
class TaskInstance:
    """The latest try of one task instance, as stored."""

    task_id: str
    map_index: int
    state: TaskState | None  # None: no try recorded (the local engine's view of a task never reached)
    try_number: int
    start: str | None = None
    end: str | None = None
    duration: float | None = None
    error: str | None = None
    xcoms: str | None = None  # the task's XComs as stored (airstep.runtime.xcoms), when read with values
    rendered_map_index: str | None = None  # its map_index_template, rendered by its latest try
    tries: tuple[EndedTry, ...] = ()  # its ended tries, oldest first (when read with them)

    @property
    def label(self) -> str:
        return instance_label(self.task_id, self.map_index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "map_index": self.map_index,
            "state": self.state.value if self.state else None,
            "try_number": self.try_number,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "error": self.error,
            "rendered_map_index": self.rendered_map_index,
            "tries": [t.to_dict() for t in self.tries],
        }

    @classmethod
    def from_item(cls, item: Item) -> TaskInstance:
        """A stored task instance; end, duration and error belong to a try only once it has ended."""
        data = plain(item)
        _, task_id, map_index = data["sk"].rsplit("#", 2)
        state = TaskState(data["state"]) if "state" in data else None  # None: cleared, not run again yet
        ended = state is not None and state is not TaskState.RUNNING
        start, end = data.get("start_date"), data.get("end_date")
        return cls(
            task_id=task_id,
            map_index=int(map_index),
            state=state,
            try_number=int(data.get("try_number", 0)),
            start=start,
            end=end if ended else None,
            duration=seconds_between(start, end) if ended and start and end else None,
            error=data.get("error") if state in _ERROR_STATES else None,
            xcoms=data.get("xcoms", legacy_xcoms(data.get("xcom"))),
            rendered_map_index=data.get("rendered_map_index"),
            tries=tuple(EndedTry.from_item(t) for t in item.get("tries", {}).get("L", [])),
        )

    def xcom(self, key: str = XCOM_RETURN_KEY) -> Any:
        """The value of one of the task's XComs (None if it pushed none under `key`)."""
        xcoms = decode_xcoms(self.xcoms)
        return xcoms.get(key) if xcoms is not None else None


def legacy_xcoms(return_value: str | None) -> str | None:
    """What a record (or an executor) from before keyed XComs held under `xcom`, the bare return
    value, as {key: value}."""
    return None if return_value is None else '{"return_value":' + return_value + "}"


class FinishedInstances:
    """A bounded, thread-safe memo of finished task instances (immutable once finished). Large return
    values are not kept."""

    MAX_ENTRIES = 2_048
    MAX_XCOM_CHARS = 64_000
    MAX_MAPPED_CHARS = 8_000_000  # every instance of the mapped tasks kept, their XComs together

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, str], TaskInstance] = OrderedDict()
        self._mapped: OrderedDict[tuple[str, str], tuple[int, list[TaskInstance], int]] = OrderedDict()
        self._mapped_chars = 0
        self._lock = threading.Lock()

    def get_mapped(self, pk: str, task_id: str) -> tuple[int, list[TaskInstance]] | None:
        with self._lock:
            found = self._mapped.get((pk, task_id))
            return None if found is None else (found[0], found[1])

    def add_mapped(self, pk: str, task_id: str, length: int, instances: list[TaskInstance]) -> None:
        """A mapped task all of whose `length` instances have finished: the instances of a task mapped
        over it (each reads them all) share one read in a warm process."""
        indexed = [ti for ti in instances if ti.map_index >= 0]  # not a record of the task as a whole
        if len(indexed) != length or any(ti.state not in FINISHED for ti in indexed):
            return
        chars = sum(len(ti.xcoms or "") for ti in instances) + 300 * length  # ~300 bytes an instance
        if chars > self.MAX_MAPPED_CHARS:
            return
        with self._lock:
            if (pk, task_id) in self._mapped:
                return
            self._mapped[(pk, task_id)] = (length, instances, chars)
            self._mapped_chars += chars
            while self._mapped_chars > self.MAX_MAPPED_CHARS:
                _, (_, _, dropped) = self._mapped.popitem(last=False)
                self._mapped_chars -= dropped

    def get(self, pk: str, label: str) -> TaskInstance | None:
        with self._lock:
            return self._entries.get((pk, label))

    def add(self, pk: str, ti: TaskInstance) -> None:
        if ti.xcoms is not None and len(ti.xcoms) > self.MAX_XCOM_CHARS:
            return
        with self._lock:
            self._entries[(pk, ti.label)] = ti
            if len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)


@dataclass(frozen=True, slots=True)
class BegunTry:
    """A try that has begun: its number, and how many tries the instance had before it was last
    cleared (its retries count from there, as Airflow's max_tries = try_number + retries at a clear)."""

    number: int
    earlier: int = 0
    tries: tuple[Item, ...] = ()  # its ended tries so far, as stored (end_try writes them back with its own)
    usage: LambdaUsage = field(default_factory=LambdaUsage)  # its invocations' so far (end_try adds the last's)


@dataclass(frozen=True, slots=True)
class PokeWait:
    """A sensor's try between two pokes: its number, when it began, the pokes so far, what they
    pushed, a time sensor's moment (ISO), and the tries before the instance was last cleared."""

    try_number: int
    started: str
    pokes: int
    pushed: str | None
    until: str | None = None
    earlier: int = 0
    watching: str | None = None  # a TriggerDagRunOperator's wait: the run it triggered ("<dag_id> <run_id>")
    asking: str | None = None  # a TriggerDagRunOperator's request (JSON), asked of start-run, not yet answered
    tries: tuple[Item, ...] = ()  # the instance's ended tries before this one, as stored
    usage: LambdaUsage = field(default_factory=LambdaUsage)  # its invocations' so far
    calling: str | None = None  # an AWS operator's try waiting for its call: the call's parameters (JSON)


class TaskInstances:
    table: Table
    finished: FinishedInstances

    def begin_try(self, run: RunKey, task_id: str, now: str, map_index: int = -1) -> BegunTry | None:
        """Start the next try of a task instance (None if it is finished)."""
        item_key = key(run.pk, schema.ti_sk(task_id, map_index))
        first = {
            **item_key,
            "state": string(TaskState.RUNNING.value),
            "start_date": string(now),
            "try_number": {"N": "1"},
            EXPIRES_AT: self.table.expires_at(),
        }
        # The first try creates the item: one plain put, no update expression to evaluate.
        if self.table.put(first, condition="attribute_not_exists(sk)"):
            return BegunTry(1)
        updated = self.table.update(
            item_key,
            "SET #s = :running, start_date = :now ADD try_number :one REMOVE end_date",  # (the last try's)
            condition="attribute_not_exists(fin)",
            returns="ALL_NEW",  # with the tries before a clear (ReturnValues costs no read capacity)
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":running": string(TaskState.RUNNING.value),
                ":now": string(now),
                ":one": {"N": "1"},
            },
        )
        if updated is None:
            return None
        return BegunTry(
            int(updated["try_number"]["N"]),
            int(updated.get("cleared_tries", {}).get("N", 0)),
            tuple(updated.get("tries", {}).get("L", ())),
            carried_usage([updated]),
        )

    def resume_poke(self, run: RunKey, task_id: str, calling: bool = False) -> PokeWait | None:
        """Take up a sensor's try that waits for its next poke, or (`calling`) an AWS operator's try
        that waits for its call (None: no try of the task waits)."""
        condition = "attribute_exists(pokes) AND attribute_not_exists(fin)"
        if calling:
            condition += " AND attribute_exists(call_params)"
        updated = self.table.update(
            key(run.pk, schema.ti_sk(task_id, -1)),
            "SET #s = :running",
            condition=condition,
            returns="ALL_NEW",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":running": string(TaskState.RUNNING.value)},
        )
        if updated is None:
            return None
        return PokeWait(
            int(updated["try_number"]["N"]),
            updated["start_date"]["S"],
            int(updated["pokes"]["N"]),
            updated.get("xcoms", {}).get("S"),
            updated.get("until", {}).get("S"),
            int(updated.get("cleared_tries", {}).get("N", 0)),
            updated.get("watching", {}).get("S"),
            updated.get("asking", {}).get("S"),
            tuple(updated.get("tries", {}).get("L", ())),
            carried_usage([updated]),
            updated.get("call_params", {}).get("S"),
        )

    def await_poke(
        self,
        run: RunKey,
        task_id: str,
        try_number: int,
        state: TaskState,
        pokes: int,
        pushed: str | None = None,
        until: str | None = None,
        watching: str | None = None,
        asking: str | None = None,
        usage: LambdaUsage | None = None,
        calling: str | None = None,
    ) -> bool:
        """A poke that was not done: try `try_number` waits for the next one, `state` meanwhile
        (running, or up_for_reschedule), having poked `pokes` times and pushed `pushed` (kept for the
        try's end); a time sensor's try waits `until` its moment, a TriggerDagRunOperator's for the
        run it is `watching`, or for start-run's answer to what it is `asking` (a retried runner asks
        again rather than run the try's code again); an AWS operator's try waits for its call, with
        the parameters it is `calling` with (a run step delivered again answers the same)."""
        values: dict[str, Any] = {
            ":state": string(state.value),
            ":pokes": {"N": str(pokes)},
            ":try": {"N": str(try_number)},
            ":running": string(TaskState.RUNNING.value),
        }
        update = "SET #s = :state, pokes = :pokes"
        if pushed is not None:
            update += ", xcoms = :pushed"
            values[":pushed"] = string(pushed)
        if until is not None:
            update += ", #u = :until"
            values[":until"] = string(until)
        if watching is not None:
            update += ", watching = :watching"
            values[":watching"] = string(watching)
        if calling is not None:
            update += ", call_params = :calling"
            values[":calling"] = string(calling)
        if asking is not None:
            update += ", asking = :asking"
            values[":asking"] = string(asking)
        else:
            update += " REMOVE asking"
        if usage is not None:  # the poke's invocation's Lambda usage, added to the instance's
            update += f" {ADD_USAGE}"
            values.update(usage_values(usage))
        updated = self.table.update(
            key(run.pk, schema.ti_sk(task_id, -1)),
            update,
            condition="try_number = :try AND #s = :running",
            ExpressionAttributeNames={"#s": "state", **({"#u": "until"} if until is not None else {})},
            ExpressionAttributeValues=values,
        )
        return updated is not None

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
        xcoms_json: str | None = None,
        rendered_map_index: str | None = None,
        earlier: int = 0,
        history: tuple[Item, ...] = (),
        usage: LambdaUsage | None = None,
    ) -> bool:
        """Close try `try_number` (begun at `start`) if it is still the running one: a late,
        timed-out try changes nothing. `earlier`: the instance's tries before it was last cleared;
        `history`: its ended tries before this one, as beginning this try read them (BegunTry.tries);
        `usage`: the Lambda usage of the instance's invocations, this one's included (carried forward).

        A task instance item holds its latest try and the history of its tries, so the try is written
        whole (one conditional put). `xcoms_json` (from `encode_xcoms`) holds the try's XComs, stored
        with the task instance.
        """
        item: Item = {
            **key(run.pk, schema.ti_sk(task_id, map_index)),
            "state": string(state.value),
            "try_number": {"N": str(try_number)},
            "start_date": string(start),
            "end_date": string(now),
            EXPIRES_AT: self.table.expires_at(),
        }
        if state in FINISHED:
            item["fin"] = {"BOOL": True}
        if error is not None:
            item["error"] = string(error[:MAX_ERROR_CHARS])
        if xcoms_json is not None:
            item["xcoms"] = string(xcoms_json)
        if rendered_map_index is not None:
            item["rendered_map_index"] = string(rendered_map_index[:MAX_RENDERED_MAP_INDEX_CHARS])
        if earlier:
            item["cleared_tries"] = {"N": str(earlier)}
        ended = (EndedTry(try_number, state, start, now).to_item(),) if try_number <= MAX_KEPT_TRIES else ()
        if history or ended:
            item["tries"] = {"L": [*history, *ended][:MAX_KEPT_TRIES]}
        if usage is not None:
            item[USAGE_REQUESTS], item[USAGE_MB_MS] = {"N": str(usage.requests)}, {"N": str(usage.mb_ms)}
        return self.table.put(
            item,
            condition="try_number = :try AND #s = :running",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":try": {"N": str(try_number)}, ":running": string(TaskState.RUNNING.value)},
        )

    def abandon_try(self, run: RunKey, task_id: str, try_number: int, map_index: int = -1) -> bool:
        """Take back try `try_number`, begun but never run (the runner failed before the task's code
        ran): the instance is as it was before the try began, so the retry is not counted twice."""
        item_key = key(run.pk, schema.ti_sk(task_id, map_index))
        condition = "try_number = :try AND #s = :running"
        names = {"#s": "state"}
        values: dict[str, Any] = {":try": {"N": str(try_number)}, ":running": string(TaskState.RUNNING.value)}
        if try_number == 1:
            return self.table.delete(
                item_key, condition=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=values
            )
        values.update({":previous": {"N": str(try_number - 1)}, ":retry": string(TaskState.UP_FOR_RETRY.value)})
        updated = self.table.update(
            item_key,
            "SET try_number = :previous, #s = :retry REMOVE pokes, call_params",  # (the taken-back try's wait)
            condition=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return updated is not None

    def finish_unfinished(
        self,
        run: RunKey,
        task_id: str,
        state: TaskState,
        now: str,
        error: str | None = None,
        map_index: int = -1,
        unstarted_only: bool = False,
        usage: LambdaUsage | None = None,
    ) -> bool:
        """Give a task instance a final state unless it has one (skips, upstream failures, crashed
        tries); with `unstarted_only`, only if no try of it is running either (a branch's skip: Airflow
        never skips a running task; one waiting for its retry may be skipped)."""
        values: dict[str, Any] = {
            ":state": string(state.value),
            ":now": string(now),
            ":fin": {"BOOL": True},
            ":expires": self.table.expires_at(),
        }
        names = {"#s": "state"}
        update = "SET #s = :state, end_date = :now, fin = :fin, expires_at = :expires"
        if error is not None:
            update += ", #e = :err"
            names["#e"] = "error"
            values[":err"] = string(error[:MAX_ERROR_CHARS])
        if usage is not None:  # the invocation that settled it: its record carries its Lambda usage
            update += f" {ADD_USAGE}"
            values.update(usage_values(usage))
        condition = "attribute_not_exists(fin)"
        if unstarted_only:
            condition += " AND (attribute_not_exists(#s) OR #s = :retry)"
            values[":retry"] = string(TaskState.UP_FOR_RETRY.value)
        updated = self.table.update(
            key(run.pk, schema.ti_sk(task_id, map_index)),
            update,
            condition=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return updated is not None

    def clear_instances(
        self, run: RunKey, task_ids: list[str], only: frozenset[TaskState] | None = None
    ) -> list[TaskInstance]:
        """Airflow's clear of every instance of the given tasks (`only`: those in these states): no
        state, result or end any more; the try number stays, and the tries so far no longer count
        against the task's retries. A task cleared whole forgets its expansion (a mapped task expands
        again), and a task in a mapped task group a branch's skip of every instance. Returns the
        instances as they were."""
        cleared = []
        for task_id in task_ids:
            for ti in self._query_instances(run, schema.ti_prefix(task_id)):
                if only is not None and ti.state not in only:
                    continue
                self.table.update(
                    key(run.pk, schema.ti_sk(task_id, ti.map_index)),
                    "SET cleared_tries = if_not_exists(try_number, :zero), expires_at = :expires "
                    "REMOVE fin, #s, xcoms, xcom, #e, end_date, pokes, #u, watching, asking, call_params, "
                    "rendered_map_index",
                    ExpressionAttributeNames={"#s": "state", "#e": "error", "#u": "until"},
                    ExpressionAttributeValues={":zero": {"N": "0"}, ":expires": self.table.expires_at()},
                )
                cleared.append(ti)
            if only is None:
                self.table.delete(key(run.pk, schema.map_sk(task_id)))
                self.table.delete(key(run.pk, schema.skip_sk(task_id)))
        return cleared

    def mark_instances(self, run: RunKey, task_id: str, state: TaskState, now: str) -> int:
        """Set every instance of a task to a final `state` by hand (Airflow's mark success/failed);
        a task with no instance yet gets one. Returns how many instances were set."""
        labels = [ti.map_index for ti in self._query_instances(run, schema.ti_prefix(task_id))] or [-1]
        for map_index in labels:
            self.table.update(
                key(run.pk, schema.ti_sk(task_id, map_index)),
                "SET #s = :state, fin = :fin, end_date = :now, try_number = if_not_exists(try_number, :zero), "
                "expires_at = :expires",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":state": string(state.value),
                    ":fin": {"BOOL": True},
                    ":now": string(now),
                    ":zero": {"N": "0"},
                    ":expires": self.table.expires_at(),
                },
            )
        return len(labels)

    def task_instances(self, run: RunKey, with_tries: bool = False) -> list[TaskInstance]:
        """Every task instance of a run, without return values (`with_tries`: with its ended tries)."""
        return self._query_instances(run, schema.ti_prefix(), with_tries=with_tries)

    def instances_of(self, run: RunKey, task_ids: list[str]) -> list[TaskInstance]:
        """Every instance (any map index) of the given tasks, without return values."""
        return [ti for task_id in task_ids for ti in self._query_instances(run, schema.ti_prefix(task_id))]

    def _query_instances(
        self, run: RunKey, prefix: str, with_values: bool = False, with_tries: bool = False
    ) -> list[TaskInstance]:
        """The run's instances whose sort key starts with `prefix` (return values only `with_values`,
        ended tries only `with_values` or `with_tries`)."""
        projection = _LISTING + (", tries" if with_tries else "")
        listing = (
            {} if with_values else {"ProjectionExpression": projection, "ExpressionAttributeNames": _LISTING_NAMES}
        )
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ti)",
            ExpressionAttributeValues={":pk": string(run.pk), ":ti": string(prefix)},
            ConsistentRead=True,
            **listing,
        )
        return [TaskInstance.from_item(item) for item in items]

    def get_task_instances(self, run: RunKey, task_ids: list[str], map_index: int = -1) -> dict[str, TaskInstance]:
        """The given tasks' instances (unmapped, or at `map_index`) with their return values, by
        task_id (one batch read).

        Finished instances never change, so each is read once per process: the tasks of a fan-out
        that a warm task runner serves share one read of their upstream."""
        found = {
            t: ti for t in task_ids if (ti := self.finished.get(run.memo_key, instance_label(t, map_index))) is not None
        }
        missing = list(dict.fromkeys(t for t in task_ids if t not in found))
        for item in self.table.batch_get([key(run.pk, schema.ti_sk(t, map_index)) for t in missing]):
            ti = TaskInstance.from_item(item)
            found[ti.task_id] = ti
            if ti.state in FINISHED:
                self.finished.add(run.memo_key, ti)
        return found

    def set_map_length(self, run: RunKey, task_id: str, length: int) -> None:
        """Record how many instances a mapped task has (its expand step counted them)."""
        item: Item = {**key(run.pk, schema.map_sk(task_id)), "length": {"N": str(length)}}
        self.table.put({**item, EXPIRES_AT: self.table.expires_at()})

    def map_length(self, run: RunKey, task_id: str) -> int | None:
        """How many instances a mapped task expanded into (None: it never did)."""
        counted = self.table.batch_get([key(run.pk, schema.map_sk(task_id))])
        return int(counted[0]["length"]["N"]) if counted else None

    def skip_every_instance(self, run: RunKey, task_id: str) -> None:
        """A branch outside a mapped task group skipped one of its tasks: each instance of it is
        skipped when it comes to run (Airflow's NotPreviouslySkippedDep)."""
        self.table.put({**key(run.pk, schema.skip_sk(task_id)), EXPIRES_AT: self.table.expires_at()})

    def skips_every_instance(self, run: RunKey, task_id: str) -> bool:
        return bool(self.table.batch_get([key(run.pk, schema.skip_sk(task_id))]))

    def get_mapped(self, run: RunKey, task_id: str) -> tuple[int | None, list[TaskInstance]]:
        """A mapped task's instance count (None: never counted) and its instances with their XComs,
        in map-index order (a task settled as a whole, never expanded, has only instance -1)."""
        if (remembered := self.finished.get_mapped(run.memo_key, task_id)) is not None:
            return remembered
        length = self.map_length(run, task_id)
        found = self._query_instances(run, schema.ti_prefix(task_id), with_values=True)
        instances = sorted(found, key=lambda ti: ti.map_index)
        if length is not None:
            self.finished.add_mapped(run.memo_key, task_id, length, instances)
        return length, instances

    def get_xcoms(self, run: RunKey, task_ids: list[str], key: str = XCOM_RETURN_KEY) -> dict[str, Any]:
        """The given tasks' XComs under `key` (by default their return values), by task_id; a task
        that pushed none under `key` is absent."""
        found = {task_id: ti.xcoms for task_id, ti in self.get_task_instances(run, task_ids).items() if ti.xcoms}
        values = {task_id: decode_xcoms(text) or {} for task_id, text in found.items()}
        return {task_id: xcoms[key] for task_id, xcoms in values.items() if key in xcoms}
