"""Loads the exact DAG file version a run was compiled from, once per warm process."""

from __future__ import annotations

import threading
from pathlib import Path

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
        raise DagVersionError("loading DAG files from S3 arrives with the deployed platform")
    source = Path(uri).read_bytes()
    if content_version(source) != version:
        raise DagVersionError(
            f"{uri} changed since this run was compiled (expected {version}, found {content_version(source)})"
        )
    return load_dag_file(uri, source)


def clear() -> None:
    with _lock:
        _cache.clear()
