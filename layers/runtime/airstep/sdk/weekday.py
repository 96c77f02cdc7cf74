"""`WeekDay`: ISO day numbers by name, as Airflow's `airflow.providers.standard.utils.weekday`."""

from __future__ import annotations

import enum
from collections.abc import Iterable


@enum.unique
class WeekDay(enum.IntEnum):
    """Python's ISO weekday numbers (Monday is 1)."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> WeekDay:
        """The day named `week_day_str` (any case); AttributeError for a name that is no day."""
        name = week_day_str.upper()
        if name not in cls.__members__:
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"')
        return cls[name]

    @classmethod
    def convert(cls, day: str | WeekDay) -> int:
        return day if isinstance(day, WeekDay) else cls.get_weekday_number(week_day_str=day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str] | Iterable[WeekDay]) -> set[int]:
        """The ISO numbers of a day, a day's name, or several of either."""
        if isinstance(week_day, WeekDay):
            week_day = {week_day}
        elif isinstance(week_day, str):
            week_day = {week_day}
        elif not isinstance(week_day, Iterable):
            raise TypeError(
                f"Unsupported Type for week_day parameter: {type(week_day)}."
                "Input should be iterable type:str, set, list, dict or Weekday enum type"
            )
        return {cls.convert(item) for item in week_day}
