"""What the amazon provider's `version_compat` module tells a DAG file: the Airflow it runs on is
3.3 (the version whose behaviour airstep matches), and its "argument not set" sentinel."""

from __future__ import annotations

from typing import Any

AIRFLOW_VERSION = (3, 3, 2)
_FLAGS = {
    "AIRFLOW_V_3_0_PLUS": (3, 0, 0),
    "AIRFLOW_V_3_1_PLUS": (3, 1, 0),
    "AIRFLOW_V_3_1_1_PLUS": (3, 1, 1),
    "AIRFLOW_V_3_1_8_PLUS": (3, 1, 8),
    "AIRFLOW_V_3_2_PLUS": (3, 2, 0),
    "AIRFLOW_V_3_3_PLUS": (3, 3, 0),
    "AIRFLOW_V_3_4_PLUS": (3, 4, 0),
}
VERSION_FLAGS = tuple(_FLAGS)
AIRFLOW_V_3_0_PLUS = AIRFLOW_V_3_1_PLUS = AIRFLOW_V_3_1_1_PLUS = AIRFLOW_V_3_1_8_PLUS = True
AIRFLOW_V_3_2_PLUS = AIRFLOW_V_3_3_PLUS = True
AIRFLOW_V_3_4_PLUS = False
assert all(globals()[flag] is (AIRFLOW_VERSION >= least) for flag, least in _FLAGS.items())


class ArgNotSet:
    """The type of NOTSET: an argument the caller did not give (None may be a value)."""

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET = ArgNotSet()


def is_arg_set(value: Any) -> bool:
    return value is not NOTSET
