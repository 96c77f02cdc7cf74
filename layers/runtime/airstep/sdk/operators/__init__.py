"""The operators airstep runs, in Airflow's module names: `python`, `bash`, `empty`."""

from airstep.sdk.operators.bash import BashOperator
from airstep.sdk.operators.empty import EmptyOperator
from airstep.sdk.operators.python import PythonOperator

__all__ = ["BashOperator", "EmptyOperator", "PythonOperator"]
