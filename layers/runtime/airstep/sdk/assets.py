"""Airflow 3's assets: `Asset`, and the conditions `AssetAll` / `AssetAny` (also written `&` / `|`)
that a DAG's `schedule=` may name; a task's `outlets=` lists the assets its success updates.

An asset is known by its name (unique in an environment, as in Airflow 3); its URI is normalised as
Airflow normalises it (scheme in lower case, no trailing slash, no fragment, query sorted).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from airstep.errors import DagDefinitionError, SourceLocation
from airstep.sdk.triggers import BaseEventTrigger, MessageQueueTrigger

MAX_NAME_BYTES = 1000  # DynamoDB sort keys hold at most 1,024 bytes, prefix included


class BaseAsset:
    """What `schedule=` accepts as an asset condition."""

    def __or__(self, other: object) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)

    def __and__(self, other: object) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def to_condition(self) -> dict[str, Any]:
        """The condition as the graph model stores it (airstep.runtime.assets evaluates it)."""
        raise NotImplementedError


class AssetWatcher:
    """`AssetWatcher(name, trigger)`: the trigger's events update the asset (airstep watches SQS
    queues: `MessageQueueTrigger`)."""

    def __init__(self, name: str, trigger: BaseEventTrigger) -> None:
        if not isinstance(trigger, BaseEventTrigger):
            raise ValueError("Asset watcher trigger must inherit BaseEventTrigger")
        self.name = _identifier("watcher name", name)
        self.trigger = trigger

    def to_dict(self) -> dict[str, str]:
        assert isinstance(self.trigger, MessageQueueTrigger)
        return {"name": self.name, "queue": self.trigger.sqs_queue}

    def __repr__(self) -> str:
        return f"AssetWatcher(name={self.name!r}, trigger={self.trigger!r})"


class Asset(BaseAsset):
    """`Asset(name)`, `Asset(name, uri)` or `Asset(uri=...)`: the name defaults to the URI and the
    URI to the name, as in Airflow 3. `watchers=[AssetWatcher(...)]` update it from an SQS queue."""

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str | None = None,
        extra: dict[str, Any] | None = None,
        watchers: list[AssetWatcher] | None = None,
    ) -> None:
        if name is None and uri is None:
            raise TypeError("Asset() requires either 'name' or 'uri'")
        name = str(uri) if name is None else name
        uri = name if uri is None else str(uri)
        self.name = _identifier("name", name)
        if self.name in ("self", "context"):
            raise ValueError(f"prohibited name for asset: {self.name}")
        if len(self.name.encode()) > MAX_NAME_BYTES:  # Airflow allows 1,500 characters
            raise ValueError(
                f"Asset name cannot exceed {MAX_NAME_BYTES:,} bytes in airstep (it keys the asset's records)"
            )
        self.uri = _identifier("uri", normalized_uri(uri))
        self.group = _identifier("group", group if group is not None else "asset", empty=True)
        self.extra = dict(extra or {})
        self.watchers = list(watchers or [])
        for watcher in self.watchers:
            if not isinstance(watcher, AssetWatcher):
                raise TypeError(f"Asset watchers must be AssetWatcher objects, got {watcher!r}")

    def to_condition(self) -> dict[str, Any]:
        condition: dict[str, Any] = {"asset": self.name, "uri": self.uri}
        if self.watchers:
            condition["watchers"] = [watcher.to_dict() for watcher in self.watchers]
        return condition

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and (self.name, self.uri) == (other.name, other.uri)

    def __hash__(self) -> int:
        return hash((self.name, self.uri))

    def __repr__(self) -> str:
        return f"Asset(name={self.name!r}, uri={self.uri!r})"

    def __fspath__(self) -> str:
        return self.uri


class _Condition(BaseAsset):
    kind = ""

    def __init__(self, *objects: BaseAsset) -> None:
        if not all(isinstance(o, BaseAsset) for o in objects):
            raise TypeError("expect asset expressions in condition")
        self.objects = objects

    def to_condition(self) -> dict[str, Any]:
        return {self.kind: [o.to_condition() for o in self.objects]}

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.objects == other.objects  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self.objects))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"


class AssetAny(_Condition):
    """Any one of the assets (or conditions) updated since the DAG's last asset-triggered run."""

    kind = "any"

    def __or__(self, other: object) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(*self.objects, other)


class AssetAll(_Condition):
    """Every one of the assets (or conditions) updated since the DAG's last asset-triggered run."""

    kind = "all"

    def __and__(self, other: object) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(*self.objects, other)


def asset_schedule(schedule: Any) -> BaseAsset | None:
    """`schedule=` as an asset condition (a list of assets is their AssetAll), or None if it is not one."""
    if isinstance(schedule, BaseAsset):
        return schedule
    if (
        isinstance(schedule, (list, tuple, set, frozenset))
        and schedule
        and all(isinstance(s, BaseAsset) for s in schedule)
    ):
        return AssetAll(*schedule)
    return None


def outlet_assets(value: Any, location: SourceLocation) -> tuple[Asset, ...]:
    """A task's `outlets=`: the assets its success updates."""
    if value is None:
        return ()
    found = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in found:
        if not isinstance(item, Asset):
            raise DagDefinitionError(f"outlets must be Asset objects, got {item!r}", location)
    return tuple(dict.fromkeys(found))


def normalized_uri(uri: str) -> str:
    """Airflow 3's `_sanitize_uri` for the schemes it knows without a provider."""
    parsed = urllib.parse.urlsplit(uri)
    if not parsed.scheme and not parsed.netloc:  # not a URI: kept as written
        return uri
    scheme = parsed.scheme.lower()
    if not scheme or scheme.startswith("x-"):
        return uri
    if scheme == "airflow":
        raise ValueError("Asset scheme 'airflow' is reserved")
    netloc = parsed.netloc.rpartition("@")[2] if parsed.password else parsed.netloc  # no password in a URI
    query = urllib.parse.urlencode(sorted(urllib.parse.parse_qsl(parsed.query))) if parsed.query else ""
    parsed = parsed._replace(
        scheme=scheme, netloc=netloc, path=parsed.path.rstrip("/") or "/", query=query, fragment=""
    )
    return urllib.parse.urlunsplit(parsed)


def _identifier(field: str, value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"Asset {field} must be a string")
    if len(value) > 1500:
        raise ValueError(f"Asset {field} cannot exceed 1500 characters")
    if value.isspace():
        raise ValueError(f"Asset {field} cannot be just whitespace")
    if not value and not empty:
        raise ValueError(f"Asset {field} cannot be empty")
    return value


class AssetEventReference:
    """One event an asset-triggered run consumed, as a task reads it from
    `context["triggering_asset_events"][asset]` (Airflow's AssetEventDagRunReference fields)."""

    def __init__(self, event: dict[str, Any]) -> None:
        source = event.get("source", {})
        self.asset = Asset(event["asset"], event["uri"])
        self.extra: dict[str, Any] = dict(event.get("extra") or {})
        self.timestamp = datetime.fromisoformat(event["timestamp"])
        self.source_dag_id: str | None = source.get("dag_id")
        self.source_run_id: str | None = source.get("run_id")
        self.source_task_id: str | None = source.get("task_id")
        self.source_map_index: int = int(source.get("map_index", -1))
        self.source: dict[str, Any] = dict(source)  # an S3 object's bucket and key, for an s3:// asset

    def __repr__(self) -> str:
        return f"AssetEventReference(asset={self.asset!r}, timestamp={self.timestamp.isoformat()!r})"


class TriggeringAssetEvents(Mapping[Asset, list[AssetEventReference]]):
    """`context["triggering_asset_events"]`: the run's consumed events by asset (empty for a run
    that assets did not trigger)."""

    def __init__(self, events: Iterable[dict[str, Any]]) -> None:
        self._events: dict[str, list[AssetEventReference]] = {}  # by asset name: how airstep knows an asset
        self._assets: dict[str, Asset] = {}
        for event in events:
            reference = AssetEventReference(event)
            self._events.setdefault(reference.asset.name, []).append(reference)
            self._assets.setdefault(reference.asset.name, reference.asset)

    def __getitem__(self, key: Asset) -> list[AssetEventReference]:
        if not isinstance(key, Asset):
            raise TypeError(f"Key should be an asset, not {type(key)}")
        return self._events.get(key.name, [])

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._assets.values())

    def __len__(self) -> int:
        return len(self._events)
