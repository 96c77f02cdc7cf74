"""The metadata table's keys and indexes (single-table design; template.yaml declares the same table,
and a test compares the two)::

    pk = DAG#<dag_id>            sk = DAG                       a deployed DAG (file, version, machine)
    pk = FILE#<s3 uri>           sk = IMPORT_ERROR              why a DAG file could not be loaded
                                 sk = FILE                      a DAG file as last parsed (its DAGs, imports)
    pk = BUNDLES                 sk = LATEST                    the latest bundle of the DAG prefix
    pk = RUN#<dag_id>#<run_id>   sk = RUN                       the run (tracked from execution events)
                                 sk = TI#<task_id>#<map_index>  a task instance (latest try) and its
                                                                XComs (`xcoms`: {key: value}, JSON text)
                                 sk = GATE#<task_id>            a gate's token and arrived upstreams
                                 sk = MAP#<task_id>             how many instances a mapped task has
                                 sk = SKIP#<task_id>            a task of a mapped task group that a
                                                                branch outside it skipped
    pk = SLOTS#<group>           sk = SLOTS                     a run slot group (a DAG's runs, or its
                                                                backfill's): limit, holders {run_id: taken-at and arn}
                                 sk = QUEUE#<order>#<run_id>    a run waiting for a slot of the group
    pk = POOLS                   sk = POOL#<name>               a pool: slots, used, holders {holder: slots and arn}
    pk = RUNPOOLS                sk = POOL#max_active_tasks:...  a run's own pool (its DAG's max_active_tasks)
    pk = POOL#<name>             sk = WAIT#<order>#<holder>     a task instance waiting for slots (its token)
    pk = ASSET#<name>            sk = EVENT#<number>            an update of the asset (by a task, an S3 object)
                                 sk = SEQ                       the number of its latest event
                                 sk = SOURCE#<digest>           an event's source, once (duplicates write nothing)
                                 sk = CONSUMER#<dag_id>         a DAG scheduled on the asset (its condition)
    pk = ASSETQ#<dag_id>         sk = QUEUED#<asset>            an asset updated since the DAG's last
                                                                asset-triggered run (first queued at, its
                                                                first event's number, a version)
    pk = BUCKET#<bucket>         sk = WATCH#<digest>            an s3:// asset in the bucket that a DAG is
                                                                scheduled on (its name, URI and DAG): the
                                                                bucket's object events update it
    pk = SQS#<queue arn>         sk = WATCH#<digest>            an asset a DAG is scheduled on that an
                                                                AssetWatcher of the SQS queue updates

    gsi1  DAG#<dag_id> / RUN#<start>#<run_id>    runs of a DAG, newest first
          DAGS / <dag_id>, IMPORT_ERRORS / <file>  all DAGs; all import errors
          FILES / <file>                           all DAG files
    gsi2  ACTIVE / <start>#<dag_id>#<run_id>      runs not yet seen ending (sparse: removed when they end)
          QUEUED / <queued at>#<group>            runs waiting for a slot (sparse: removed when they start)
    gsi3  RUNID#<run_id>                          a run by its run_id alone
"""

from __future__ import annotations

from typing import Any

from airstep.contract import RUN_POOL_PREFIX

DAG_SK = "DAG"
IMPORT_ERROR_SK = "IMPORT_ERROR"
FILE_SK = "FILE"
BUNDLES_PK = "BUNDLES"
LATEST_SK = "LATEST"
ALL_FILES = "FILES"
RUN_SK = "RUN"
RUN_STARTED_PREFIX = "RUN#"
TI_PREFIX = "TI#"
MAP_PREFIX = "MAP#"
SKIP_PREFIX = "SKIP#"
GATE_PREFIX = "GATE#"
DEADLINE_PREFIX = "DEADLINE#"  # a run's deadline alerts, by index
USAGE_PREFIX = "USAGE#"  # a run's Lambda usage, in shards (runner invocations add to one each)
USAGE_SHARDS = 8
ALL_DAGS = "DAGS"
ALL_IMPORT_ERRORS = "IMPORT_ERRORS"
LISTING_INDEX = "gsi1"  # runs of a DAG; all DAGs; all import errors
ACTIVE_RUNS_INDEX = "gsi2"
ACTIVE_RUNS = "ACTIVE"
RUN_ID_INDEX = "gsi3"
SLOTS_SK = "SLOTS"
QUEUE_PREFIX = "QUEUE#"
QUEUED_RUNS = "QUEUED"
POOLS_PK = "POOLS"  # every pool, one item each
RUN_POOLS_PK = "RUNPOOLS"  # the pools of runs whose DAG sets max_active_tasks
POOL_PREFIX = "POOL#"
WAITER_PREFIX = "WAIT#"
ASSET_PREFIX = "ASSET#"
ASSET_EVENT_PREFIX = "EVENT#"
CONSUMER_PREFIX = "CONSUMER#"
ASSET_QUEUE_PREFIX = "ASSETQ#"
QUEUED_ASSET_PREFIX = "QUEUED#"
ASSET_SEQUENCE_SK = "SEQ"
DAG_PREFIX = "DAG#"
WATCHED_BUCKET_PREFIX = "BUCKET#"
WATCHED_QUEUE_PREFIX = "SQS#"
WATCH_PREFIX = "WATCH#"
SOURCE_PREFIX = "SOURCE#"


def dag_pk(dag_id: str) -> str:
    return f"{DAG_PREFIX}{dag_id}"


def file_pk(file: str) -> str:
    return f"FILE#{file}"


def deadline_sk(alert: int) -> str:
    return f"{DEADLINE_PREFIX}{alert}"


def run_pk(dag_id: str, run_id: str) -> str:
    return f"RUN#{dag_id}#{run_id}"


def run_started_sk(start: str, run_id: str) -> str:
    return f"{RUN_STARTED_PREFIX}{start}#{run_id}"


def run_id_pk(run_id: str) -> str:
    return f"RUNID#{run_id}"


def slots_pk(group: str) -> str:
    return f"SLOTS#{group}"


def queue_sk(order: str, run_id: str) -> str:
    return f"{QUEUE_PREFIX}{order}#{run_id}"


def pool_key(name: str) -> tuple[str, str]:
    """A pool's item: a run's own pool (max_active_tasks) apart from the pools users set."""
    return (RUN_POOLS_PK if name.startswith(RUN_POOL_PREFIX) else POOLS_PK), pool_sk(name)


def pool_sk(name: str) -> str:
    return f"{POOL_PREFIX}{name}"


def pool_waiters_pk(name: str) -> str:
    """The task instances waiting for slots of a pool."""
    return f"{POOL_PREFIX}{name}"


def pool_waiter_sk(order: str, holder: str) -> str:
    return f"{WAITER_PREFIX}{order}#{holder}"


def asset_pk(name: str) -> str:
    return f"{ASSET_PREFIX}{name}"


def asset_event_sk(number: int) -> str:
    return f"{ASSET_EVENT_PREFIX}{number:012d}"


def consumer_sk(dag_id: str) -> str:
    return f"{CONSUMER_PREFIX}{dag_id}"


def asset_queue_pk(dag_id: str) -> str:
    """A consumer DAG's queue: the assets updated since its last asset-triggered run."""
    return f"{ASSET_QUEUE_PREFIX}{dag_id}"


def queued_asset_sk(name: str) -> str:
    return f"{QUEUED_ASSET_PREFIX}{name}"


def watched_bucket_pk(bucket: str) -> str:
    """The s3:// assets in a bucket that DAGs are scheduled on."""
    return f"{WATCHED_BUCKET_PREFIX}{bucket}"


def watched_queue_pk(queue_arn: str) -> str:
    """The assets DAGs are scheduled on that an SQS queue's messages update."""
    return f"{WATCHED_QUEUE_PREFIX}{queue_arn}"


def watch_sk(digest: str) -> str:
    return f"{WATCH_PREFIX}{digest}"


def ti_sk(task_id: str, map_index: int) -> str:
    return f"{ti_prefix(task_id)}{map_index}"


def ti_prefix(task_id: str = "") -> str:
    """The sort keys of a task's instances (every map index), or of every instance of a run."""
    return f"{TI_PREFIX}{task_id}#" if task_id else TI_PREFIX


def map_sk(task_id: str) -> str:
    """A mapped task's instance count, once its expand step has counted them."""
    return f"{MAP_PREFIX}{task_id}"


def skip_sk(task_id: str) -> str:
    """A task of a mapped task group skipped from outside it: every instance of it is skipped."""
    return f"{SKIP_PREFIX}{task_id}"


def gate_sk(task_id: str) -> str:
    return f"{GATE_PREFIX}{task_id}"


def _index(name: str, *keys: str) -> dict[str, Any]:
    schema = [{"AttributeName": key, "KeyType": kind} for key, kind in zip(keys, ("HASH", "RANGE"))]
    return {"IndexName": name, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}}


TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk")
    ],
    "GlobalSecondaryIndexes": [
        _index(LISTING_INDEX, "gsi1pk", "gsi1sk"),
        _index(ACTIVE_RUNS_INDEX, "gsi2pk", "gsi2sk"),
        _index(RUN_ID_INDEX, "gsi3pk"),
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def create_table(client: Any, table_name: str) -> None:
    """Create the metadata table (local engine and tests; AWS gets it from template.yaml)."""
    client.create_table(TableName=table_name, **TABLE_SCHEMA)
