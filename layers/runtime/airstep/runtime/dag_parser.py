"""The parse function: loads one DAG file of a bundle in the sandbox and returns its graph models.

It has no AWS permissions at all (its role may only write its own logs): the compile function sends
the bundle in the invocation and gets data back, so no DAG file's code ever runs where platform
credentials are.
"""

from __future__ import annotations

import base64
import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from airstep.runtime.constants import SERVICE_NAME
from airstep.sandbox import ParseLimits, parse_dag_file

logger = Logger(service=SERVICE_NAME)


@dataclass(frozen=True, slots=True)
class ParseRequest:
    """One DAG file (`path`, relative to the bundle's root) of a bundle (its zip), named `uri`."""

    bundle: bytes
    path: str
    uri: str

    def to_event(self) -> dict[str, Any]:
        return {"bundle": base64.b64encode(self.bundle).decode(), "path": self.path, "uri": self.uri}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ParseRequest:
        return cls(base64.b64decode(event["bundle"]), event["path"], event["uri"])


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ParseRequest.from_event(event)
    logger.append_keys(file=request.uri)
    with tempfile.TemporaryDirectory(prefix="airstep-bundle-") as root:
        zipfile.ZipFile(io.BytesIO(request.bundle)).extractall(root)
        parsed = parse_dag_file(Path(root) / request.path, uri=request.uri, root=root, limits=ParseLimits.from_env())
    logger.info("parsed", extra={"dags": len(parsed.models), "errors": len(parsed.errors)})
    return parsed.to_dict()
