"""RedshiftDataOperator (airflow.providers.amazon.aws.operators.redshift_data) as Step Functions
calls: `aws-sdk:redshiftdata:executeStatement` (a list of statements: `batchExecuteStatement`), then
`describeStatement` every `poll_interval` seconds until it ends (the Data API has no `.sync`), with
Wait states between: no compute is held while the statement runs. The XCom is the list of statement
ids the provider returns (a batch's sub-statements'); a statement that ends FAILED or ABORTED fails
the try with Redshift's error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airstep.errors import DagDefinitionError
from airstep.integration import Grant, Poll, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text

START = "arn:aws:states:::aws-sdk:redshiftdata:executeStatement"
START_BATCH = "arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement"
DESCRIBE = "arn:aws:states:::aws-sdk:redshiftdata:describeStatement"
# The provider waits for as long as the statement runs; here at most this long without execution_timeout
DEFAULT_WAIT_SECONDS = 24 * 3600


def _parameters(value: Any) -> list[dict[str, str]]:
    items = list(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(i, Mapping) and set(i) == {"name", "value"} for i in items):
        raise TypeError("expected a list of {'name': ..., 'value': ...}")
    return [{"name": str(i["name"]), "value": str(i["value"])} for i in items]


def _statements(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of SQL statements")
    return list(value)


class RedshiftDataOperator(AwsOperator):
    """Runs SQL on a Redshift cluster or Serverless workgroup through the Data API and waits for it
    (unless `wait_for_completion=False`); returns the statement ids."""

    template_fields = (
        "cluster_identifier",
        "database",
        "sql",
        "db_user",
        "parameters",
        "statement_name",
        "workgroup_name",
        "session_id",
    )
    template_ext = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    fields = {
        "sql": Field("Sql", text),
        "database": Field("Database", text),
        "cluster_identifier": Field("ClusterIdentifier", text),
        "workgroup_name": Field("WorkgroupName", text),
        "db_user": Field("DbUser", text),
        "parameters": Field("Parameters", _parameters),
        "secret_arn": Field("SecretArn", text),
        "statement_name": Field("StatementName", text),
        "with_event": Field("WithEvent", bool),
    }
    returns_value = True
    returns_list = True

    def __init__(
        self,
        *,
        sql: str | list[str],
        database: str | None = None,
        cluster_identifier: str | None = None,
        db_user: str | None = None,
        parameters: list[dict[str, str]] | None = None,
        secret_arn: str | None = None,
        statement_name: str | None = None,
        with_event: bool = False,
        wait_for_completion: bool = True,
        poll_interval: int = 10,
        return_sql_result: bool = False,
        workgroup_name: str | None = None,
        deferrable: bool = False,
        session_id: str | None = None,
        session_keep_alive_seconds: int | None = None,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.database = database
        self.cluster_identifier = cluster_identifier
        self.db_user = db_user
        self.parameters = parameters
        self.secret_arn = secret_arn
        self.statement_name = statement_name
        self.with_event = with_event
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval if isinstance(poll_interval, int) and poll_interval > 0 else 10
        self.return_sql_result = return_sql_result
        self.workgroup_name = workgroup_name
        self.deferrable = deferrable
        self.session_id = session_id
        self.session_keep_alive_seconds = session_keep_alive_seconds
        self.cancel_on_kill = cancel_on_kill
        if isinstance(sql, (list, tuple)):  # a batch: its statements in one call, as Sqls
            self.fields = {**self.fields, "sql": Field("Sqls", _statements)}  # type: ignore[misc]
        if return_sql_result:
            self.refuse("return_sql_result", "a result set does not travel through a state machine: read it in a task")
        for name, value in (("session_id", session_id), ("session_keep_alive_seconds", session_keep_alive_seconds)):
            if value is not None:
                self.refuse(name, "Data API sessions are not translated (each statement stands alone)")
        if sum(x is not None for x in (cluster_identifier, workgroup_name)) != 1:
            raise DagDefinitionError(
                f"{type(self).__name__} {self.task_id!r}: exactly one of cluster_identifier or workgroup_name "
                "must be provided",
                self.location,
            )

    def call_resource(self) -> str:
        return START_BATCH if isinstance(self.sql, (list, tuple)) else START

    def call_returns(self) -> tuple[str, ...]:
        # a batch's ids are its sub-statements' (as the provider returns them); one statement's, its own
        return ("SubStatements[*].Id",) if isinstance(self.sql, (list, tuple)) else ("Id",)

    def integration_poll(self) -> Poll:
        waits = self.wait_for_completion
        return Poll(
            resource=DESCRIBE,
            parameters=(),
            from_answer=("Id",),
            status="Status",
            running=("SUBMITTED", "PICKED", "STARTED") if waits else (),
            failure="Status" if waits else "",
            failed=("FAILED", "ABORTED") if waits else (),
            message="Error",
            interval_seconds=self.poll_interval,
            max_polls=DEFAULT_WAIT_SECONDS // self.poll_interval if waits else 1,
            failed_as="AirflowException" if self.deferrable else "RedshiftDataQueryFailedError",
        )

    def grants(self) -> tuple[Grant, ...]:
        run = ("redshift-data:BatchExecuteStatement",) if isinstance(self.sql, (list, tuple)) else ()
        run += ("redshift-data:ExecuteStatement",)
        if self.cluster_identifier is not None:
            cluster = self.named(self.cluster_identifier)
            target = arn("redshift", f"cluster:{cluster}")
            grants = [Grant(run, (target,))]
            database = arn("redshift", f"dbname:{cluster}/{self.named(self.database) if self.database else '*'}")
            if self.secret_arn is None and self.db_user is not None:  # temporary credentials for the database user
                user = arn("redshift", f"dbuser:{cluster}/{self.named(self.db_user)}")
                grants.append(Grant(("redshift:GetClusterCredentials",), (user, database)))
            elif self.secret_arn is None:  # the Data API signs in as the role itself
                grants.append(Grant(("redshift:GetClusterCredentialsWithIAM",), (database,)))
        else:  # a Serverless workgroup is named in its ARN by id, not by name
            workgroup = arn("redshift-serverless", "workgroup/*")
            grants = [Grant(run, (workgroup,))]
            if self.secret_arn is None:
                grants.append(Grant(("redshift-serverless:GetCredentials",), (workgroup,)))
        if self.secret_arn is not None:
            grants.append(Grant(("secretsmanager:GetSecretValue",), (self.named(self.secret_arn),)))
        # the Data API's statement calls take no resource: its own statements are all a role may see
        grants.append(Grant(("redshift-data:DescribeStatement", "redshift-data:CancelStatement"), ("*",)))
        return tuple(grants)
