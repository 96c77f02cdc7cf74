"""LatestOnlyOperator: lets the run of the latest schedule interval through, skips older ones."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from airstep.sdk.operators.branch import BaseBranchOperator
from airstep.sdk.schedule import next_interval_end
from airstep.states import RunType


class LatestOnlyOperator(BaseBranchOperator):
    """Airflow 3.3's LatestOnlyOperator: a manual run, or a run whose DAG has no later interval,
    follows every direct downstream task; otherwise they are followed only if now falls in
    (this run's data interval start, the end of the interval after it] - the run is the latest -
    and skipped if not (a backfill or catch-up run of an older interval)."""

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str]:
        follow_all = sorted(self.downstream_task_ids)
        run = context["dag_run"]
        if run.run_type == RunType.MANUAL or self.dag.schedule is None or not self.dag.schedule.timed:
            return follow_all  # an asset-triggered DAG has no next interval: Airflow lets it through
        start = run.data_interval_start or run.logical_date
        end = run.data_interval_end or run.logical_date
        if start is None or end is None:  # a run with no logical date (Airflow: its run_after, now)
            return follow_all
        right = next_interval_end(self.dag.schedule, end, self.dag.schedule_timezone)
        if right is None:
            return follow_all
        return follow_all if start < datetime.now(UTC) <= right else []
