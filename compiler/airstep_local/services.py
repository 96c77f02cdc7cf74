"""The AWS resources a DAG's service integrations name, stood up in moto for a local run, and the
Lambda functions it calls, run from their source here.

A run here calls moto where AWS would be called: an SNS topic, SQS queue, S3 bucket, Glue job or
crawler, or Athena workgroup that the DAG names in a parameter known at compile time is created in
moto first (in the account its ARN names; moto's queue URLs resolve by name), so that the publish
lands where a test or the user can read it. A
topic or queue named by a template is not known before the run: create it in a test, or the call
fails as AWS would fail it. A Lambda function runs here only when the user gives its handler
(`airstep run --lambda NAME=FILE.py:FUNCTION`); otherwise invoking it fails with Lambda's
ResourceNotFoundException.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airstep.model import DagModel

Handler = Callable[[dict[str, Any], Any], Any]


def provide(model: DagModel, region: str) -> None:
    """Create in moto the topics, queues and Glue jobs that the DAG's calls name at compile time."""
    for task in model.tasks:
        if task.integration is not None:
            service = task.integration.resource.split(":::", 1)[-1].removeprefix("aws-sdk:").split(":", 1)[0]
            provider = _PROVIDERS.get(service)
            if provider is not None:  # (moto's SNS, SQS or Glue is imported only for a DAG that calls it)
                provider(task.integration.parameters, region)


def _topic(parameters: dict[str, Any], region: str) -> None:
    from moto.sns import sns_backends

    topic = parameters.get("TargetArn") or parameters.get("TopicArn")
    parts = topic.split(":") if isinstance(topic, str) else []
    if len(parts) == 6 and parts[:3] == ["arn", "aws", "sns"] and "/" not in parts[5]:  # a topic, not an endpoint
        backend = sns_backends[parts[4]][region]  # moto finds a topic in the account its ARN names
        if topic not in backend.topics:
            fifo = {"FifoTopic": "true"} if parts[5].endswith(".fifo") else {}
            backend.create_topic(parts[5], attributes=fifo)


def _queue(parameters: dict[str, Any], region: str) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs import sqs_backends

    queue = parameters.get("QueueUrl")
    if isinstance(queue, str) and "/" in queue:  # moto finds a queue by name in the caller's account
        name = queue.rstrip("/").rsplit("/", 1)[-1]
        fifo = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
        sqs_backends[DEFAULT_ACCOUNT_ID][region].create_queue(name, **fifo)


def _glue(parameters: dict[str, Any], region: str) -> None:
    """A Glue job or crawler of that name (in moto a job's run runs no script and a crawl reads
    nothing: they succeed, as moto's do)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.glue import glue_backends

    backend = glue_backends[DEFAULT_ACCOUNT_ID][region]
    role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/glue"
    job, crawler = parameters.get("JobName"), parameters.get("Name")
    if isinstance(job, str) and job not in backend.jobs:
        command = {"Name": "glueetl", "ScriptLocation": f"s3://local/{job}.py"}
        backend.create_job(name=job, role=role, command=command, **dict.fromkeys(_GLUE_JOB_SETTINGS))  # type: ignore[arg-type]
    if isinstance(crawler, str) and crawler not in backend.crawlers:
        from moto.moto_api import state_manager

        # moto ends a crawl only when crawls are listed: here it ends by the first check, as a short crawl would
        state_manager.set_transition("glue::crawl", {"progression": "immediate"})
        targets = {"S3Targets": [{"Path": f"s3://local/{crawler}/"}]}
        backend.create_crawler(name=crawler, role=role, targets=targets, **dict.fromkeys(_GLUE_CRAWLER_SETTINGS))  # type: ignore[arg-type]


def _buckets(parameters: dict[str, Any], region: str) -> None:
    """The buckets named at compile time (a copy's source bucket too), empty; a name S3 refuses is left
    to the call, which fails as in AWS."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.exceptions import InvalidBucketName
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    source = parameters.get("CopySource")
    for bucket in (parameters.get("Bucket"), source.split("/", 1)[0] if isinstance(source, str) else None):
        if isinstance(bucket, str) and bucket not in backend.buckets:
            with contextlib.suppress(InvalidBucketName):
                backend.create_bucket(bucket, region)


def _workgroup(parameters: dict[str, Any], region: str) -> None:
    """The Athena workgroup named at compile time (moto has `primary`; its queries read nothing and succeed)."""
    from moto.athena import athena_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = athena_backends[DEFAULT_ACCOUNT_ID][region]
    workgroup = parameters.get("WorkGroup")
    if isinstance(workgroup, str) and backend.get_work_group(workgroup) is None:
        backend.create_work_group(workgroup, configuration={}, description="", tags=[])


def _statements(parameters: dict[str, Any], region: str) -> None:
    """moto's Redshift Data API runs no SQL: here a statement ends FINISHED by its first check, as a
    short query would (moto leaves it STARTED for ever), and a batch (which moto does not take) is
    one statement per SQL, each a sub-statement `<id>:<n>` of the batch, as Redshift names them."""
    from moto.redshiftdata import models, responses

    if getattr(models.RedshiftDataAPIServiceBackend, "_airstep_finishes", False):
        return
    made = models.Statement.__init__

    def finished(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.status = "FINISHED"

    def batch_execute_statement(self: Any) -> Any:
        where = {
            "cluster_identifier": self._get_param("ClusterIdentifier"),
            "database": self._get_param("Database"),
            "db_user": self._get_param("DbUser"),
            "secret_arn": self._get_param("SecretArn"),
        }
        sqls = self._get_param("Sqls")
        batch = self.redshiftdata_backend.execute_statement(sql="; ".join(sqls), parameters=None, **where)
        for number, sql in enumerate(sqls, start=1):
            sub = models.Statement(query_parameters=None, query_string=sql, **where)  # type: ignore[arg-type]
            batch.sub_statements.append({"Id": f"{batch.id}:{number}", "QueryString": sql, "Status": sub.status})
        return 200, {}, json.dumps({"Id": batch.id, "Database": batch.database, "CreatedAt": batch.created_at})

    models.Statement.__init__ = finished  # type: ignore[method-assign]
    responses.RedshiftDataAPIServiceResponse.batch_execute_statement = batch_execute_statement  # type: ignore[attr-defined]
    models.RedshiftDataAPIServiceBackend._airstep_finishes = True  # type: ignore[attr-defined]


def _emr_steps(parameters: dict[str, Any], region: str) -> None:
    """moto's EMR runs no step: here each step has COMPLETED by its first check, as a short step
    would (moto leaves the first RUNNING and the others PENDING for ever). A test that wants another
    end sets the step's `state` on moto's backend."""
    from moto.emr import models

    if getattr(models.Step, "_airstep_completes", False):
        return
    made = models.Step.__init__

    def completed(self: Any, state: str, *args: Any, **kwargs: Any) -> None:
        made(self, "COMPLETED", *args, **kwargs)

    models.Step.__init__ = completed  # type: ignore[method-assign]
    models.Step._airstep_completes = True  # type: ignore[attr-defined]


_GLUE_JOB_SETTINGS = (
    "description log_uri execution_property default_arguments non_overridable_arguments connections max_retries "
    "allocated_capacity timeout max_capacity security_configuration tags notification_property glue_version "
    "number_of_workers worker_type code_gen_configuration_nodes execution_class source_control_details"
).split()
_GLUE_CRAWLER_SETTINGS = (
    "database_name description schedule classifiers table_prefix schema_change_policy recrawl_policy "
    "lineage_configuration configuration crawler_security_configuration tags"
).split()
_PROVIDERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "sns": _topic,
    "sqs": _queue,
    "glue": _glue,
    "s3": _buckets,
    "athena": _workgroup,
    "redshiftdata": _statements,
    "emr": _emr_steps,
}


class FunctionSpecError(ValueError):
    """A `--lambda` option that does not name a handler."""


def local_function(spec: str) -> tuple[str, Handler]:
    """`NAME=FILE.py:FUNCTION` as the function's name and its handler, loaded from the file."""
    name, equals, target = spec.partition("=")
    path, colon, attribute = target.rpartition(":")
    if not equals or not name or not colon or not path or not attribute:
        raise FunctionSpecError(f"--lambda {spec!r}: expected NAME=FILE.py:FUNCTION")
    file = Path(path)
    if not file.is_file():
        raise FunctionSpecError(f"--lambda {spec!r}: no file {path}")
    module_name = f"airstep_local_function_{name.replace('-', '_')}"
    loader_spec = importlib.util.spec_from_file_location(module_name, file)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        raise FunctionSpecError(f"--lambda {spec!r}: {file} does not load: {type(exc).__name__}: {exc}") from None
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise FunctionSpecError(f"--lambda {spec!r}: {file} has no function {attribute!r}")
    return name, handler
