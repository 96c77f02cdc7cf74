"""Where the CLI reads run metadata: a deployed stack (`--stack`), or the local runs of this folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airstep.model import DagModel
from airstep.runtime.store import DagRecord, MetadataStore, RunRecord
from airstep.runtime.store.schema import RUN_SK
from airstep_cli.errors import UserError

LOCAL_STATE = Path(".airstep") / "local-metadata.json"


@dataclass(frozen=True, slots=True)
class Target:
    """An opened metadata store, and for a deployed stack the clients to start runs with."""

    store: MetadataStore
    sfn: Any = None
    stack: str | None = None
    scheduler: Any = None
    schedule_group: str | None = None
    logs: Any = None  # CloudWatch Logs, where the stack's tries' logs are
    task_log_group: str | None = None  # the default executor's log group (a queue's: <this>-<queue>)
    region: str = "us-east-1"  # the stack's (its prices); local runs are priced as if in us-east-1
    audit_group: str | None = None  # the stack's audit log group (airstep.runtime.audit)


def stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    except (ClientError, BotoCoreError) as exc:
        raise UserError([f"--stack {stack}: cannot describe the stack ({exc})"]) from None
    return {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}


def find_run(store: MetadataStore, run_id: str, dag_id: str | None = None) -> RunRecord:
    """The run with this run_id (in `dag_id`, if given); UserError if there is none, or several."""
    found = [r for r in store.find_runs(run_id) if dag_id in (None, r.dag_id)]
    if len(found) != 1:
        choices = ", ".join(sorted(r.dag_id for r in found))
        raise UserError(
            [f"run {run_id!r}: " + (f"in several DAGs ({choices}); pass --dag-id" if found else "not found")]
        )
    return found[0]


def deployed_model(dag: DagRecord, region: str | None) -> DagModel:
    """The graph model of a DAG deployed to a stack (read with the caller's credentials)."""
    import boto3

    from airstep.runtime.dag_cache import read_s3

    if dag.model is None:
        raise UserError([f"DAG {dag.dag_id!r} was deployed before airstep could run its runs again: upload it again"])
    return DagModel.from_json(read_s3(dag.model, s3=boto3.client("s3", region_name=region)).decode())


def local_runs(dag_id: str) -> dict[str, RunRecord]:
    """The DAG's runs in the local history, by logical date (read from the file: no engine needed)."""
    if not LOCAL_STATE.exists():
        return {}
    items = json.loads(LOCAL_STATE.read_text(encoding="utf-8"))["items"]
    runs = [RunRecord.from_item(i) for i in items if i["sk"]["S"] == RUN_SK and i.get("dag_id", {}).get("S") == dag_id]
    newest_last = sorted(runs, key=lambda run: run.start_date or "")  # as Airflow, the latest run of a date
    return {run.logical_date: run for run in newest_last if run.logical_date}


@contextmanager
def open_target(stack: str | None, region: str | None) -> Iterator[Target]:
    """The deployed stack's table, or the local metadata that `airstep run` keeps in .airstep/. An AWS
    error while the target is used is a UserError naming the stack (no traceback)."""
    if stack:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        outputs = stack_outputs(stack, region)
        if "MetadataTableName" not in outputs:
            raise UserError([f"--stack {stack}: not an airstep stack (no MetadataTableName output)"])
        client = boto3.client("dynamodb", region_name=region)
        target = Target(
            MetadataStore(outputs["MetadataTableName"], client=client),
            boto3.client("stepfunctions", region_name=region),
            stack,
            boto3.client("scheduler", region_name=region),
            outputs.get("ScheduleGroupName"),
            boto3.client("logs", region_name=region),
            outputs.get("TaskLogGroupName"),
            client.meta.region_name,
            outputs.get("AuditLogGroupName"),
        )
        try:
            yield target
        except (ClientError, BotoCoreError) as exc:
            raise UserError([f"--stack {stack}: {exc}"]) from None
        return
    if not LOCAL_STATE.exists():
        raise UserError([f"no local runs here yet ({LOCAL_STATE} is missing): `airstep run` a DAG, or pass --stack"])
    from airstep_local.engine import LocalEngine

    with LocalEngine(state_file=LOCAL_STATE, load_state=True) as engine:
        yield Target(engine.store)
