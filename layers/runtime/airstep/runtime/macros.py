"""Airflow's `macros` in templates and the context: `{{ macros.ds_add(ds, 7) }}`, `macros.datetime`,
`macros.timedelta`, and the modules Airflow exposes there (json, time, uuid, random, dateutil)."""

from __future__ import annotations

import json  # noqa: F401 - exposed as macros.json
import time  # noqa: F401 - exposed as macros.time
import uuid  # noqa: F401 - exposed as macros.uuid
from datetime import datetime, timedelta
from random import random  # noqa: F401 - exposed as macros.random

import dateutil  # noqa: F401 - exposed as macros.dateutil (a dependency of pendulum)


def ds_add(ds: str, days: int) -> str:
    """`ds` (YYYY-MM-DD) moved by `days`: `ds_add("2015-01-01", 5)` is "2015-01-06"."""
    if not days:
        return str(ds)
    moved = datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)
    return moved.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """`ds` read with `input_format` and written with `output_format`."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)
