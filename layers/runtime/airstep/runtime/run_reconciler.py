"""Settles runs whose final status event never arrived, and gives back run slots nobody freed.

Step Functions' status events are best effort: a lost TIMED_OUT or ABORTED would leave a run
running forever, and no alarm would fire. Every few minutes this function asks Step Functions
about each run still listed as active a while after it started, and applies what it answers exactly
as the run tracker applies an event (with the same conditional writes and the same alarm metrics),
so a lost event and a delivered one end the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from airstep.runtime import assets, pooling
from airstep.runtime.admission import reclaim
from airstep.runtime.clients import client
from airstep.runtime.constants import SERVICE_NAME
from airstep.runtime.run_tracker import execution_detail, status_event, track_and_count
from airstep.runtime.store import MetadataStore, metadata_store

logger = Logger(service=SERVICE_NAME)
GRACE = timedelta(minutes=10)  # a final event usually arrives within seconds
COUNTING_SECONDS_PER_RUN = 5.0  # a lost run's children's histories: it settles many runs a pass


def reconcile_runs(store: MetadataStore, sfn: Any, functions: Any, now: datetime | None = None) -> dict[str, Any]:
    """Give back the slots of every group whose queue has waited longer than GRACE to runs that are
    no longer running and start what they allow; then apply the real status of every run active for
    longer than GRACE whose execution has ended (freeing its slot); and give back the pool slots of
    task instances whose executions have ended, starting the waiters behind them; and ask start-run
    again for asset-triggered runs due for longer than GRACE (a start-run that failed every attempt)."""
    before = ((now or datetime.now(UTC)) - GRACE).isoformat()
    started = {}
    for group in store.waiting_groups(queued_before=before):
        started.update(reclaim(store, sfn, group, taken_before=before))
    if started:
        logger.warning("started queued runs a promoter left waiting", extra={"run_ids": sorted(started)})
    settled = []
    for run in store.active_runs(started_before=before):
        if run.execution_arn is None:
            continue
        description = sfn.describe_execution(executionArn=run.execution_arn)
        if description["status"] == "RUNNING":
            continue
        event = status_event(execution_detail(description))
        result = track_and_count(event, store, sfn, functions, COUNTING_SECONDS_PER_RUN)
        settled.append({"dag_id": run.dag_id, "run_id": run.run_id, "status": description["status"], **result})
        logger.warning("settled a run whose final event was lost", extra=settled[-1])
    pools = pooling.repair(store, sfn)
    if pools:
        logger.warning("gave back pool slots of ended runs, or started waiters", extra={"pools": pools})
    due = assets.overdue_consumers(store, queued_before=before)
    if due:
        logger.info("asked start-run again for asset-triggered runs left due", extra={"dag_ids": due})
        assets.announce(due)
    return {"started": sorted(started), "settled": settled, "pools": pools, "asset_runs": due}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reconcile_runs(metadata_store(), client("stepfunctions"), client("lambda"))
