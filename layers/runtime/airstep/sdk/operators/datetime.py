"""BranchDateTimeOperator: follows one set of tasks inside a time window, another outside it."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from airstep.errors import AirflowException
from airstep.sdk.operators.branch import BaseBranchOperator


class BranchDateTimeOperator(BaseBranchOperator):
    """Follows `follow_task_ids_if_true` when now (or the run's logical date, with
    `use_task_logical_date=True`) lies within [target_lower, target_upper] - datetimes, or times of
    that day (an upper time before the lower one means the next day) - else `follow_task_ids_if_false`."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        target_lower: datetime.datetime | datetime.time | None,
        target_upper: datetime.datetime | datetime.time | None,
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target_lower is None and target_upper is None:
            raise AirflowException(
                "Both target_upper and target_lower are None. At least one "
                "must be defined to be compared to the current datetime"
            )
        self.target_lower = target_lower
        self.target_upper = target_upper
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.use_task_logical_date = use_task_logical_date

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str]:
        if self.use_task_logical_date:
            now = context["logical_date"]
        else:
            now = datetime.datetime.now(datetime.UTC)
        lower, upper = target_times_as_dates(now, self.target_lower, self.target_upper)
        zone = self.dag.timezone
        lower, upper = _aware(lower, zone), _aware(upper, zone)
        if upper is not None and upper < now:
            return self.follow_task_ids_if_false
        if lower is not None and lower > now:
            return self.follow_task_ids_if_false
        return self.follow_task_ids_if_true


def target_times_as_dates(
    base_date: datetime.datetime,
    lower: datetime.datetime | datetime.time | None,
    upper: datetime.datetime | datetime.time | None,
) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """Airflow's: times become datetimes on `base_date`'s day; an upper time before the lower one
    moves to the next day."""
    if isinstance(lower, datetime.datetime) and isinstance(upper, datetime.datetime):
        return lower, upper
    if isinstance(lower, datetime.time):
        lower = datetime.datetime.combine(base_date, lower)
    if isinstance(upper, datetime.time):
        upper = datetime.datetime.combine(base_date, upper)
    if lower is None or upper is None:
        return lower, upper  # type: ignore[return-value]
    if upper < lower:
        upper += datetime.timedelta(days=1)
    return lower, upper  # type: ignore[return-value]


def _aware(value: datetime.datetime | None, zone: datetime.tzinfo) -> datetime.datetime | None:
    """Airflow's `timezone.coerce_datetime(value, dag.timezone)`: a naive time is in the DAG's zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)
