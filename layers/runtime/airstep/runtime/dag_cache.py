"""Loads the exact DAG file version a run was compiled from, once per warm process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airstep.loader import LoadedFile, content_version, load_dag_file
from airstep.sdk.dag import DAG

_cache: dict[tuple[str, str], LoadedFile] = {}
_lock = threading.Lock()


class DagVersionError(RuntimeError):
    """The DAG file cannot be loaded at the version the run needs."""


def get_dag(uri: str, version: str, dag_id: str) -> DAG:
    with _lock:
        loaded = _cache.get((uri, version))
        if loaded is None:
            loaded = _load(uri, version)
            _cache[(uri, version)] = loaded
    if loaded.errors:
        raise DagVersionError("; ".join(map(str, loaded.errors)))
    if dag_id not in loaded.dags:
        raise DagVersionError(f"{uri} at {version} defines no DAG {dag_id!r}")
    return loaded.dags[dag_id]


def _load(uri: str, version: str) -> LoadedFile:
    if uri.startswith("s3://"):
        return load_dag_file(uri, read_s3_version(uri, version))
    source = Path(uri).read_bytes()
    if content_version(source) != version:
        raise DagVersionError(
            f"{uri} changed since this run was compiled (expected {version}, found {content_version(source)})"
        )
    return load_dag_file(uri, source)


def read_s3_version(uri: str, version: str, client: Any = None) -> bytes:
    """The bytes of `s3://bucket/key` at exactly `version` (runs keep the version they started with)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = client or boto3.client("s3")
    try:
        return s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise DagVersionError(f"cannot read {uri} at version {version}: {code}") from None


def clear() -> None:
    with _lock:
        _cache.clear()
