"""Airflow's time sensors (standard provider): wait until a moment. The first poke that is not done
names the moment, and the state machine waits until it in one Wait state: the try then ends without
another poke, whatever `poke_interval` (Airflow 3 defers these sensors to the same end). A wait holds
no compute in airstep, deferrable or not, so `deferrable=` is taken and changes nothing. A subclass
that overrides `poke` pokes at its interval, as any sensor."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import pendulum

from airstep.sdk.sensors import BaseSensorOperator
from airstep.sdk.weekday import WeekDay


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class _MomentSensor(BaseSensorOperator):
    """Done once the time is past the sensor's moment (`_target`)."""

    def _target(self, context: dict[str, Any]) -> datetime.datetime:
        raise NotImplementedError

    def poke(self, context: dict[str, Any]) -> bool:
        return _utcnow() > self._target(context)

    @property
    def waits_for_moment(self) -> bool:
        return type(self).poke is _MomentSensor.poke

    def moment(self, context: dict[str, Any]) -> datetime.datetime | None:
        return self._target(context) if self.waits_for_moment else None


class DateTimeSensor(_MomentSensor):
    """Done once the time is past `target_time` (a datetime, or a templated ISO string)."""

    template_fields = ("target_time",)

    def __init__(self, *, target_time: str | datetime.datetime, deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time
        self.deferrable = deferrable

    def _target(self, context: dict[str, Any]) -> datetime.datetime:
        target: Any = self.target_time
        if isinstance(target, datetime.datetime):
            target = target.isoformat()
        if not isinstance(target, str):
            raise TypeError(f"Expected str or datetime.datetime type for target_time. Got {type(target)}")
        return pendulum.parse(target, tz="UTC")  # type: ignore[return-value]


class TimeDeltaSensor(_MomentSensor):
    """Done once `delta` (a timedelta, or minutes) has passed since the run's data interval end."""

    def __init__(self, *, delta: datetime.timedelta | int, deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta
        self.deferrable = deferrable

    def _target(self, context: dict[str, Any]) -> datetime.datetime:
        delta = (
            self.delta if isinstance(self.delta, datetime.timedelta) else datetime.timedelta(minutes=int(self.delta))
        )
        base = context.get("data_interval_end") or context["logical_date"]
        return base + delta


class TimeSensor(_MomentSensor):
    """Done once the time of day is past `target_time`, on the day the DAG file was loaded (in the
    DAG's timezone), as Airflow computes it."""

    def __init__(self, *, target_time: datetime.time, deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        zone = self.dag.timezone
        moment = datetime.datetime.combine(datetime.datetime.now(zone), target_time, zone)
        self.target_datetime = moment.astimezone(datetime.UTC)
        self.deferrable = deferrable

    def _target(self, context: dict[str, Any]) -> datetime.datetime:
        return self.target_datetime


class DayOfWeekSensor(BaseSensorOperator):
    """Done on one of `week_day` (today in UTC, or the run's logical date)."""

    def __init__(
        self,
        *,
        week_day: str | Iterable[str] | WeekDay | Iterable[WeekDay],
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def poke(self, context: dict[str, Any]) -> bool:
        day = context["logical_date"] if self.use_task_logical_date else _utcnow()
        return day.isoweekday() in self._week_day_num
