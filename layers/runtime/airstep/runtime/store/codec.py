"""One DynamoDB table through the low-level client: keys, attribute values, conditional writes, paging.

Every entity of the metadata store reads and writes through a `Table`; nothing else in the store
calls the client or parses DynamoDB's typed attribute values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

Item = dict[str, Any]  # an item in DynamoDB's typed form: {"name": {"S": "value"}, ...}
BATCH_GET_KEYS = 100  # BatchGetItem's limit per request


def key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def string(value: str) -> dict[str, str]:
    return {"S": value}


def number(value: float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def typed(value: str | int | float | bool) -> dict[str, Any]:
    """A plain value in DynamoDB's typed form."""
    if isinstance(value, bool):
        return {"BOOL": value}
    return number(value) if isinstance(value, (int, float)) else string(value)


def plain(item: Item) -> dict[str, Any]:
    """An item with plain values: strings, floats, booleans and sets of strings."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        ((kind, inner),) = value.items()
        out[name] = float(inner) if kind == "N" else set(inner) if kind == "SS" else inner
    return out


def conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


EXPIRES_AT = "expires_at"  # the table's TTL attribute (template.yaml: TimeToLiveSpecification)


class TransactionConflict(Exception):
    """A transaction lost to a concurrent write of one of its items (the caller may try again)."""


class Table:
    """The metadata table: `name` through `client` (a boto3 DynamoDB client). Run data written through
    it expires `retention_seconds` after its last write (DynamoDB TTL)."""

    def __init__(self, name: str, client: Any, retention_seconds: int) -> None:
        self.name = name
        self.client = client
        self.retention_seconds = retention_seconds

    def expires_at(self) -> dict[str, str]:
        """The TTL attribute's value for an item of run data written now."""
        return {"N": str(int(time.time()) + self.retention_seconds)}

    def get(self, item_key: Item) -> Item | None:
        return self.client.get_item(TableName=self.name, Key=item_key, ConsistentRead=True).get("Item")

    def put(self, item: Item, *, condition: str | None = None, **expression: Any) -> bool:
        """Write `item`; False if `condition` (with its ExpressionAttributeNames/Values) does not hold."""
        request: dict[str, Any] = {"TableName": self.name, "Item": item, **expression}
        if condition:
            request["ConditionExpression"] = condition
        return self._conditional(self.client.put_item, request) is not None

    def update(
        self, item_key: Item, update: str, *, condition: str | None = None, returns: str = "NONE", **expression: Any
    ) -> Item | None:
        """Apply `update`; the returned attributes (`returns`), or None if `condition` does not hold."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": item_key,
            "UpdateExpression": update,
            "ReturnValues": returns,
            **expression,
        }
        if condition:
            request["ConditionExpression"] = condition
        response = self._conditional(self.client.update_item, request)
        return None if response is None else response.get("Attributes", {})

    def update_part(self, part: dict[str, Any]) -> Item | None:
        """Apply one TransactWriteItems Update part ({"Key", "UpdateExpression", ...}) on its own."""
        rest = {k: v for k, v in part.items() if k not in ("Key", "UpdateExpression")}
        return self.update(part["Key"], part["UpdateExpression"], **rest)

    def transact(self, writes: list[dict[str, Any]]) -> bool:
        """Write all of `writes` (TransactWriteItems parts: {"Put"|"Update"|"Delete": {...}}, the
        table named for each) or none; False if a condition did not hold (throttling and conflicts
        raise: the caller's retry writes again)."""
        failed = self.transact_failures(writes)
        if failed is None:
            raise TransactionConflict
        return not failed

    def transact_failures(self, writes: list[dict[str, Any]]) -> list[int] | None:
        """Write all of `writes` or none: [] when written, else the indexes of the parts whose
        condition did not hold; None when it lost to a concurrent write (DynamoDB's
        TransactionConflict) and may be tried again."""
        parts = [{kind: {"TableName": self.name, **part} for kind, part in write.items()} for write in writes]
        try:
            self.client.transact_write_items(TransactItems=parts)
        except ClientError as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if "ConditionalCheckFailed" in codes:
                return [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
            if "TransactionConflict" in codes:
                return None
            raise
        return []

    def delete(self, item_key: Item, *, condition: str | None = None, **expression: Any) -> bool:
        """Delete the item; False if `condition` does not hold."""
        request: dict[str, Any] = {"TableName": self.name, "Key": item_key, **expression}
        if condition:
            request["ConditionExpression"] = condition
        return self._conditional(self.client.delete_item, request) is not None

    def query(self, *, limit: int | None = None, **request: Any) -> list[Item]:
        """Every item the query matches, page after page, or the first `limit`."""
        items: list[Item] = []
        for page in self._pages({"TableName": self.name, **request, **({"Limit": limit} if limit else {})}):
            items.extend(page)
            if limit is not None and len(items) >= limit:
                return items[:limit]
        return items

    def batch_get(self, keys: list[Item]) -> list[Item]:
        """The items with these keys that exist, in any order (consistent reads)."""
        items: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self.name: {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": True}
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                items.extend(response["Responses"].get(self.name, []))
                request = response.get("UnprocessedKeys") or {}
        return items

    def scan(self) -> Iterator[list[Item]]:
        """The whole table, a page at a time."""
        return self._pages({"TableName": self.name}, self.client.scan)

    def _pages(self, request: dict[str, Any], call: Any = None) -> Iterator[list[Item]]:
        call = call or self.client.query
        while True:
            page = call(**request)
            yield page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    @staticmethod
    def _conditional(call: Any, request: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return call(**request)
        except ClientError as exc:
            if conditional_failed(exc):
                return None
            raise
