"""AthenaOperator (airflow.providers.amazon.aws.operators.athena) as Step Functions'
`athena:startQueryExecution.sync`: Step Functions starts the query and waits for it to end, holding
nothing while it runs. The XCom is the query execution's id, as the provider returns it; a query
that ends FAILED or CANCELLED fails the try with Athena's reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airstep.integration import PARTITION, Grant, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text, whole_number

START_AND_WAIT = "arn:aws:states:::athena:startQueryExecution.sync"


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"the query's context holds strings; {key!r}: {item!r} is not")
    return dict(value)


def _configuration(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    return dict(value)


class AthenaOperator(AwsOperator):
    """Runs an Athena query in `workgroup` and waits for it to end; returns its query execution id."""

    template_fields = ("query", "database", "output_location", "workgroup", "catalog")
    template_ext = (".sql",)
    template_fields_renderers = {"query": "sql"}
    resource = START_AND_WAIT
    # In the provider's order: `database` and `catalog` go into the query's context after the keys it
    # was given, `output_location` into the result configuration after its keys.
    fields = {
        "query": Field("QueryString", text),
        "query_execution_context": Field("QueryExecutionContext", _strings),
        "database": Field("QueryExecutionContext.Database", text),
        "catalog": Field("QueryExecutionContext.Catalog", text),
        "result_configuration": Field("ResultConfiguration", _configuration),
        "output_location": Field("ResultConfiguration.OutputLocation", text),
        "client_request_token": Field("ClientRequestToken", text),
        "workgroup": Field("WorkGroup", text),
    }
    returns = ("QueryExecution.QueryExecutionId",)
    returns_value = True

    def __init__(
        self,
        *,
        query: str,
        database: str | None = None,
        output_location: str | None = None,
        client_request_token: str | None = None,
        workgroup: str = "primary",
        query_execution_context: dict[str, str] | None = None,
        result_configuration: dict[str, Any] | None = None,
        sleep_time: int = 30,
        max_polling_attempts: int | None = None,
        log_query: bool = True,
        deferrable: bool = False,
        catalog: str = "AwsDataCatalog",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query = query
        self.database = database or None
        self.output_location = output_location or None
        self.client_request_token = client_request_token or None
        self.workgroup = workgroup
        self.query_execution_context = query_execution_context or {}
        self.result_configuration = result_configuration or {}
        self.sleep_time = sleep_time
        self.max_polling_attempts = max_polling_attempts
        self.log_query = log_query
        self.deferrable = deferrable
        self.catalog = catalog
        for name, value in (("sleep_time", sleep_time), ("max_polling_attempts", max_polling_attempts)):
            if value is not None:
                try:
                    if whole_number(value) < 1:
                        raise TypeError(f"expected at least 1, got {value!r}")
                except TypeError as exc:
                    self.refuse(name, str(exc))

    def wait_seconds(self) -> float | None:
        # the provider checks the query every sleep_time seconds, max_polling_attempts times (unset: ~forever)
        if self.max_polling_attempts is None:
            return None
        return float(int(self.max_polling_attempts) * int(self.sleep_time))

    def grants(self) -> tuple[Grant, ...]:
        """The query's workgroup; its catalog (the database's tables); its results location. What the
        query reads in S3 is known only from its text: the environment's permissions boundary
        (DagBoundaryResources) holds those reads. A query that writes tables (CTAS, INSERT) or
        partitions, or reads KMS-encrypted or Lake Formation data, needs more: not granted."""
        database = self.named(self.database or self.query_execution_context.get("Database") or "*")
        output = self.named(self.output_location or self.result_configuration.get("OutputLocation") or "s3://*")
        bucket, _, prefix = output.removeprefix("s3://").partition("/")
        data = f"arn:{PARTITION}:s3:::*"
        results = f"arn:{PARTITION}:s3:::{bucket}/{prefix.rstrip('*')}*" if bucket != "*" else data
        return (
            Grant(
                ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"),
                (arn("athena", f"workgroup/{self.named(self.workgroup)}"),),
            ),
            Grant(
                (
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                ),
                (arn("glue", "catalog"), arn("glue", f"database/{database}"), arn("glue", f"table/{database}/*")),
            ),
            Grant(("s3:GetBucketLocation", "s3:ListBucket"), (f"arn:{PARTITION}:s3:::{bucket}",)),
            Grant(("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"), (results,)),
            Grant(("s3:GetObject", "s3:ListBucket"), (data,)),
        )
