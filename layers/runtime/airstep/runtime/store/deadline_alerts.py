"""Deadlines: one item per deadline alert of a run, armed by its execution's first step and decided
once, when its schedule fires (missed, or met: the run had ended by then)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airstep.runtime.store import schema
from airstep.runtime.store.codec import EXPIRES_AT, Table, key, plain, string, typed

ARMED, MISSED, MET = "armed", "missed", "met"


@dataclass(frozen=True, slots=True)
class DeadlineRecord:
    """A run's deadline: which alert, its name, when it is (ISO), what became of it, for which clear."""

    alert: int
    name: str | None
    deadline: str
    state: str
    clear_number: int = 0
    called: bool = False  # a missed one's callback was run

    def to_dict(self) -> dict[str, Any]:
        data = {"alert": self.alert, "name": self.name, "deadline": self.deadline, "state": self.state}
        return data | ({"callback_called": self.called} if self.state == MISSED else {})


class Deadlines:
    table: Table

    def arm_deadline(self, run: Any, record: DeadlineRecord) -> bool:
        """Record an armed deadline for the run's execution of clear `record.clear_number` (a clear's
        re-arming replaces one still armed); False if one is recorded for that clear already."""
        item = {
            **key(run.pk, schema.deadline_sk(record.alert)),
            "deadline": string(record.deadline),
            "dstate": string(ARMED),
            "clear_number": typed(record.clear_number),
            EXPIRES_AT: self.table.expires_at(),
        }
        if record.name is not None:
            item["name"] = string(record.name)
        return self.table.put(
            item,
            condition="attribute_not_exists(sk) OR (clear_number < :clear AND dstate = :armed)",
            ExpressionAttributeValues={":clear": typed(record.clear_number), ":armed": string(ARMED)},
        )

    def deadline(self, run: Any, alert: int) -> DeadlineRecord | None:
        item = self.table.get(key(run.pk, schema.deadline_sk(alert)))
        return deadline_record(item) if item else None

    def mark_called(self, run: Any, alert: int) -> None:
        """A missed deadline's callback has run (a redelivered schedule does not run it again)."""
        self.table.update(
            key(run.pk, schema.deadline_sk(alert)),
            "SET callback_ran = :yes",
            ExpressionAttributeValues={":yes": typed(True)},
        )

    def decide_deadline(self, run: Any, alert: int, clear_number: int, outcome: str) -> bool:
        """Settle an armed deadline as `outcome` (missed or met), once: False if it was settled, or
        re-armed by a later clear's execution."""
        updated = self.table.update(
            key(run.pk, schema.deadline_sk(alert)),
            "SET dstate = :outcome",
            condition="dstate = :armed AND clear_number = :clear",
            ExpressionAttributeValues={
                ":outcome": string(outcome),
                ":armed": string(ARMED),
                ":clear": typed(clear_number),
            },
        )
        return updated is not None

    def deadlines(self, run: Any) -> list[DeadlineRecord]:
        """The run's deadlines, by alert."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": string(run.pk), ":prefix": string(schema.DEADLINE_PREFIX)},
            ConsistentRead=True,
        )
        return sorted((deadline_record(item) for item in items), key=lambda d: d.alert)


def deadline_record(item: dict[str, Any]) -> DeadlineRecord:
    data = plain(item)
    return DeadlineRecord(
        alert=int(data["sk"].removeprefix(schema.DEADLINE_PREFIX)),
        name=data.get("name"),
        deadline=data["deadline"],
        state=data["dstate"],
        clear_number=int(data.get("clear_number", 0)),
        called=bool(data.get("callback_ran", False)),
    )
