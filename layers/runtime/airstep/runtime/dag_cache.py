"""What a run executes, loaded once per warm process: the exact DAG file version it was compiled from
(for the executor, which runs task code) and its graph model (for the task runner, which runs none)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from airstep.contract import DagRef
from airstep.loader import LoadedFile, content_version, load_dag_file
from airstep.model import DagModel
from airstep.runtime.clients import client, registry
from airstep.sdk.dag import DAG


class DagVersionError(RuntimeError):
    """The DAG file cannot be loaded at the version the run needs."""


class DagCache:
    """Loaded DAG files by (file, version): a version never changes, so each is loaded once. A load
    that failed is not kept: the next invocation tries again (the failure may have been transient)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], LoadedFile] = {}
        self._lock = threading.Lock()

    def get(self, ref: DagRef) -> DAG:
        with self._lock:
            loaded = self._loaded.get((ref.file, ref.version))
            if loaded is None:
                loaded = _load(ref.file, ref.version)
                if not loaded.errors:
                    self._loaded[(ref.file, ref.version)] = loaded
        if loaded.errors:
            raise DagVersionError("; ".join(map(str, loaded.errors)))
        if ref.dag_id not in loaded.dags:
            raise DagVersionError(f"{ref.file} at {ref.version} defines no DAG {ref.dag_id!r}")
        return loaded.dags[ref.dag_id]


def get_dag(ref: DagRef) -> DAG:
    """The DAG a run executes, from the process's cache."""
    return registry.get("dag_cache", DagCache).get(ref)


class ModelCache:
    """Graph models by URI: a stored model never changes (its key is its content's hash)."""

    def __init__(self) -> None:
        self._models: dict[str, DagModel] = {}
        self._lock = threading.Lock()

    def get(self, uri: str) -> DagModel:
        with self._lock:
            model = self._models.get(uri)
        if model is None:
            model = DagModel.from_json(read_s3(uri).decode())
            with self._lock:
                self._models[uri] = model
        return model


def get_model(ref: DagRef) -> DagModel:
    """The graph model of the DAG a run executes, from the process's cache."""
    return registry.get("model_cache", ModelCache).get(ref.model)


def read_s3(uri: str, version: str | None = None, s3: Any = None) -> bytes:
    """The bytes of `s3://bucket/key` (at exactly `version`, if given)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    request = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
    try:
        return (s3 or client("s3")).get_object(**request)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        at = f" at version {version}" if version else ""
        raise DagVersionError(f"cannot read {uri}{at}: {code}") from None


def _load(uri: str, version: str) -> LoadedFile:
    if uri.startswith("s3://"):
        return load_dag_file(uri, read_s3(uri, version))
    source = Path(uri).read_bytes()
    if content_version(source) != version:
        raise DagVersionError(
            f"{uri} changed since this run was compiled (expected {version}, found {content_version(source)})"
        )
    return load_dag_file(uri, source)
