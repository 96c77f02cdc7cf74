"""Run slots: how many runs of a DAG (or of its backfill) may be active at once, which runs hold a
slot, and the runs waiting for one. A slot is taken and freed by conditional writes on one item,
each keyed by run_id, so taking or freeing twice changes nothing; a run holds its slot until its
execution's final status is applied (by the run tracker, or by the reconciler when the event is
lost), so no slot outlives its run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from airstep.contract import DagRun
from airstep.runtime.store import schema
from airstep.runtime.store.codec import Table, key, number, plain, string
from airstep.states import RunType

QUEUE_PAGE = 50  # queued runs read at a time by the promoter


def backfill_group(dag_id: str) -> str:
    """The slot group of a DAG's backfill runs (the DAG's own runs use `dag_id`)."""
    return f"{dag_id}#{RunType.BACKFILL}"


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run waiting for a slot of `group`, started in `order` (then run_id) order."""

    group: str
    order: str
    run: DagRun
    state_machine_arn: str
    catchup: bool = True  # False: a newer scheduled run of the DAG supersedes this one (Airflow's catchup=False)

    @property
    def sk(self) -> str:
        return schema.queue_sk(self.order, self.run.run_id)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> QueuedRun:
        data = plain(item)
        return cls(
            data["group"],
            data["order"],
            DagRun.from_input(json.loads(data["queued_run"])),
            data["state_machine_arn"],
            bool(data.get("catchup", True)),
        )


class RunSlots:
    table: Table

    def enqueue(self, queued: QueuedRun, limit: int | None, now: str) -> bool:
        """Queue the run (False if it is queued already) and set the group's limit (None: keep it)."""
        self.set_limit(queued.group, limit)
        return self.table.put(self.queue_item(queued, now), condition="attribute_not_exists(sk)")

    def queue_item(self, queued: QueuedRun, now: str) -> dict[str, Any]:
        """The item that queues a run (written alone by `enqueue`, or in another write's transaction)."""
        return {
            **key(schema.slots_pk(queued.group), queued.sk),
            "group": string(queued.group),
            "order": string(queued.order),
            "queued_run": string(json.dumps(queued.run.to_input(), sort_keys=True)),
            "state_machine_arn": string(queued.state_machine_arn),
            "catchup": {"BOOL": queued.catchup},
            # listed (a sparse index) so that the reconciler finds groups whose promoter stopped short
            "gsi2pk": string(schema.QUEUED_RUNS),
            "gsi2sk": string(f"{now}#{queued.group}"),
        }

    def set_limit(self, group: str, limit: int | None) -> None:
        """Change the group's limit (a DAG redeployed with another max_active_runs); None keeps the
        limit it has (a backfill's run cleared to run again keeps the backfill's), or makes it 1."""
        self.table.update_part(self.limit_update(group, limit))

    @staticmethod
    def limit_update(group: str, limit: int | None, *, keep: bool = False) -> dict[str, Any]:
        """The update that sets the group's limit (a TransactWriteItems part, or `set_limit`'s);
        `keep`: only if it has none."""
        value = "if_not_exists(#limit, :limit)" if limit is None or keep else ":limit"
        return {
            "Key": key(schema.slots_pk(group), schema.SLOTS_SK),
            "UpdateExpression": f"SET #limit = {value}, holders = if_not_exists(holders, :none)",
            "ExpressionAttributeNames": {"#limit": "limit"},
            "ExpressionAttributeValues": {":limit": number(limit or 1), ":none": {"M": {}}},
        }

    def queued_runs(self, group: str) -> list[QueuedRun]:
        """The first runs waiting for a slot of `group`, in order."""
        items = self.table.query(
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :queue)",
            ExpressionAttributeValues={":pk": string(schema.slots_pk(group)), ":queue": string(schema.QUEUE_PREFIX)},
            limit=QUEUE_PAGE,
        )
        return [QueuedRun.from_item(item) for item in items]

    def dequeue(self, queued: QueuedRun) -> None:
        self.table.delete(key(schema.slots_pk(queued.group), queued.sk))

    def take_slot(self, group: str, run_id: str, execution_arn: str, now: str) -> bool:
        """Hold a slot for the run (whose execution is, or is about to be, `execution_arn`) if one is
        free; True also if the run holds one already."""
        updated = self.table.update(
            key(schema.slots_pk(group), schema.SLOTS_SK),
            "SET holders.#run = :name",
            condition="size(holders) < #limit OR attribute_exists(holders.#run)",
            ExpressionAttributeNames={"#run": run_id, "#limit": "limit"},
            ExpressionAttributeValues={":name": string(f"{now} {execution_arn}")},
        )
        return updated is not None

    def free_slot(self, group: str, run_id: str) -> bool:
        """Give the run's slot back; False if it held none (freed already, or never queued)."""
        updated = self.table.update(
            key(schema.slots_pk(group), schema.SLOTS_SK),
            "REMOVE holders.#run",
            condition="attribute_exists(holders.#run)",
            ExpressionAttributeNames={"#run": run_id},
        )
        return updated is not None

    def slot_holders(self, group: str) -> dict[str, tuple[str, str]]:
        """The runs holding the group's slots: (execution ARN, when the slot was taken) by run_id."""
        item = self.table.get(key(schema.slots_pk(group), schema.SLOTS_SK))
        holders = plain(item).get("holders") or {} if item else {}
        taken = {run_id: value["S"].split(" ", 1) for run_id, value in sorted(holders.items())}
        return {run_id: (arn, at) for run_id, (at, arn) in taken.items()}

    def waiting_groups(self, queued_before: str) -> list[str]:
        """Groups with a run queued before `queued_before` (ISO-8601): their promoter may have stopped."""
        items = self.table.query(
            IndexName=schema.ACTIVE_RUNS_INDEX,
            KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
            ExpressionAttributeValues={":pk": string(schema.QUEUED_RUNS), ":before": string(queued_before)},
        )
        return sorted({plain(item)["group"] for item in items})
