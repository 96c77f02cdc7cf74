"""The container of a try on the ECS executor: runs the try as the executor Lambda does, and writes
its result beside its request (airstep.containers).

    python -m airstep.runtime.container   (AIRSTEP_TRY_REQUEST: the request's s3:// URI)

It runs under the container task role, which, like the executor's, can read the DAG bundles, the
request and connections, and write XComs and this result: no run record, no gate token.
"""

from __future__ import annotations

import json
import os
import sys

from aws_lambda_powertools import Logger

from airstep.containers import TRY_REQUEST_ENV, result_uri
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.executor import TryRequest, run_try
from airstep.runtime.xcoms import put_json, read_object, s3_location

logger = Logger(service=SERVICE_NAME)


def main() -> int:
    """Run the try named by the environment; 0 once its result is written (whatever the try did)."""
    uri = os.environ.get(TRY_REQUEST_ENV, "")
    if not uri.startswith("s3://"):
        print(f"{TRY_REQUEST_ENV} must be the s3:// URI of a try's request, got {uri!r}", file=sys.stderr)
        return 2
    request = TryRequest.from_event(json.loads(read_object(uri, "try's request")))
    logger.append_keys(dag_id=request.run.dag_id, run_id=request.run.run_id, task_id=request.task_id)
    result = run_try(request)
    put_json(*s3_location(result_uri(uri)), json.dumps(result.to_dict()).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
