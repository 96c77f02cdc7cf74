"""DAG bundles: everything under the bucket's `dags/` prefix, snapshotted as one immutable zip.

Airflow puts the DAGs folder on `sys.path`, so DAG files import helper modules and packages beside
them and read data files from it. airstep does the same with a bundle: at each change of the prefix
the compile function snapshots the latest version of every object under it into
`bundles/<id>.zip`, whose id is a hash of the object versions it holds, and a run pins its bundle
(tasks load their DAG file from the bundle its state machine names), so a run never sees a helper
change halfway. Building a bundle reuses the previous one's unchanged files: a change costs one read
per changed object, not one per file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from airstep.contract import BUNDLE_MANIFEST, BUNDLES_PREFIX, bundle_version

# The parse function receives the bundle in its invocation (it has no AWS access at all): Lambda
# accepts 6 MB, which this leaves room for once base64-encoded.
MAX_BUNDLE_BYTES = 4 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same files always make the same zip


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The latest version of every object under the prefix: relative path -> S3 version id."""

    bucket: str
    prefix: str
    versions: dict[str, str]

    @property
    def bundle_id(self) -> str:
        text = json.dumps(sorted(self.versions.items()), separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def key(self) -> str:
        return f"{BUNDLES_PREFIX}{self.bundle_id}.zip"

    def uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{path}"

    def data_digest(self) -> str:
        """A hash of every file that is not Python: a DAG may read any of them while it is parsed."""
        data = sorted((p, v) for p, v in self.versions.items() if not p.endswith(".py"))
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:20]


def take_snapshot(s3: Any, bucket: str, prefix: str) -> Snapshot:
    """The prefix as it is now: whatever order S3's events arrived in, this is what to deploy."""
    versions: dict[str, str] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if version["IsLatest"] and not version["Key"].endswith("/"):
                versions[version["Key"][len(prefix) :]] = version["VersionId"]
    return Snapshot(bucket, prefix, versions)


class Bundle:
    """A snapshot's files, read from its zip."""

    def __init__(self, snapshot: Snapshot, data: bytes) -> None:
        self.snapshot = snapshot
        self.data = data
        self._zip = zipfile.ZipFile(io.BytesIO(data))

    @property
    def version(self) -> str:
        return bundle_version(self.snapshot.bundle_id)

    def read(self, path: str) -> bytes:
        return self._zip.read(path)

    def files(self) -> dict[str, str]:
        """Relative path -> the S3 version it was taken at."""
        return json.loads(self._zip.read(BUNDLE_MANIFEST))["files"]


def build_bundle(s3: Any, snapshot: Snapshot, previous: Bundle | None) -> Bundle:
    """The snapshot's bundle: read from S3 if it was built before, else built (reusing `previous`'s
    unchanged files) and stored."""
    try:
        data = s3.get_object(Bucket=snapshot.bucket, Key=snapshot.key)["Body"].read()
        return Bundle(snapshot, data)
    except s3.exceptions.NoSuchKey:
        pass
    reusable = previous.files() if previous is not None else {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, version in sorted(snapshot.versions.items()):
            if previous is not None and reusable.get(path) == version:
                content = previous.read(path)
            else:
                key = snapshot.prefix + path
                content = s3.get_object(Bucket=snapshot.bucket, Key=key, VersionId=version)["Body"].read()
            archive.writestr(zipfile.ZipInfo(path, _EPOCH), content)
        manifest = {"prefix": snapshot.prefix, "files": snapshot.versions}
        archive.writestr(zipfile.ZipInfo(BUNDLE_MANIFEST, _EPOCH), json.dumps(manifest, sort_keys=True))
    data = buffer.getvalue()
    s3.put_object(Bucket=snapshot.bucket, Key=snapshot.key, Body=data)
    return Bundle(snapshot, data)


def is_dag_file(path: str, content: bytes) -> bool:
    """Airflow's safe-mode rule: a Python file is parsed for DAGs only if it mentions both "dag" and
    "airflow" (or "airstep"); other files are helpers and data, imported or read by DAG files."""
    lowered = content.lower()
    return path.endswith(".py") and b"dag" in lowered and (b"airflow" in lowered or b"airstep" in lowered)
