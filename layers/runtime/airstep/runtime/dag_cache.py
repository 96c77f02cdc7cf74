"""What a run executes, loaded once per warm process: the exact DAG file version it was compiled from
(for the executor, which runs task code) and its graph model (for the task runner, which runs none).

A deployed DAG's version is a bundle (see airstep_compiler.bundles): its zip is unpacked once per
process, and while one of its tasks runs its folder is on sys.path, as Airflow puts the DAGs folder,
with the modules it loaded (helpers imported inside tasks too). Another bundle's modules are set
aside meanwhile, so a helper never comes from another version than the DAG file's.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from airstep.contract import BUNDLE_MANIFEST, BUNDLES_PREFIX, DagRef, bundle_of
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
            bundle_id = bundle_of(ref.version)
            if bundle_id is not None:
                _activate_bundle(_unpacked(ref.file, bundle_id))
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


def _load_from_bundle(uri: str, bundle_id: str) -> LoadedFile:
    """Load `s3://<bucket>/<prefix><path>` from the bundle (already active): the file, and what it
    imports, as they were when the bundle was taken."""
    root = _unpacked(uri, bundle_id)
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    prefix = json.loads((root / BUNDLE_MANIFEST).read_text())["prefix"]
    path = root / uri.removeprefix(f"s3://{bucket}/{prefix}")
    return load_dag_file(uri, path.read_bytes(), module_file=str(path))


def _unpacked(uri: str, bundle_id: str) -> Path:
    """The bundle's folder on this machine, unpacked from S3 the first time."""
    root = BUNDLES_DIR / bundle_id
    if not (root / BUNDLE_MANIFEST).exists():
        bucket = uri.removeprefix("s3://").split("/", 1)[0]
        data = read_s3(f"s3://{bucket}/{BUNDLES_PREFIX}{bundle_id}.zip")
        unpacking = root.with_name(f"{bundle_id}.{os.getpid()}.{threading.get_ident()}")
        zipfile.ZipFile(io.BytesIO(data)).extractall(unpacking)
        try:
            unpacking.rename(root)
        except OSError:  # unpacked meanwhile by another invocation
            pass
    return root


class _ActiveBundle:
    """Which bundle's folder is on sys.path, and the modules of the others, set aside."""

    root: Path | None = None
    set_aside: dict[Path, dict[str, Any]] = {}  # noqa: RUF012 - process-wide by design


def _activate_bundle(root: Path) -> None:
    active = _ActiveBundle.root
    if active == root:
        return
    if active is not None:
        own = {
            name: module
            for name, module in list(sys.modules.items())
            if (file := getattr(module, "__file__", None)) and file.startswith(str(active) + os.sep)
        }
        for name in own:
            del sys.modules[name]
        _ActiveBundle.set_aside[active] = own
        if str(active) in sys.path:
            sys.path.remove(str(active))
    sys.modules.update(_ActiveBundle.set_aside.pop(root, {}))
    sys.path.insert(0, str(root))
    _ActiveBundle.root = root


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


BUNDLES_DIR = Path(tempfile.gettempdir()) / "airstep-bundles"


def _load(uri: str, version: str) -> LoadedFile:
    bundle_id = bundle_of(version)
    if bundle_id is not None:
        return _load_from_bundle(uri, bundle_id)
    if uri.startswith("s3://"):
        return load_dag_file(uri, read_s3(uri, version))
    source = Path(uri).read_bytes()
    if content_version(source) != version:
        raise DagVersionError(
            f"{uri} changed since this run was compiled (expected {version}, found {content_version(source)})"
        )
    return load_dag_file(uri, source)
