"""What the amazon provider's `version_compat` module tells a DAG file of the Airflow it runs on:
3.3, the version whose behaviour airstep matches (its NOTSET is airstep.sdk.param's)."""

from __future__ import annotations

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
