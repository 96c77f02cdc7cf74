"""The operators airstep runs, in Airflow's module names: `python`, `bash`, `empty`, `trigger_dagrun`."""

from airstep.sdk.operators.bash import BashOperator
from airstep.sdk.operators.empty import EmptyOperator
from airstep.sdk.operators.python import PythonOperator
from airstep.sdk.operators.trigger_dagrun import TriggerDagRunOperator

__all__ = ["BashOperator", "EmptyOperator", "PythonOperator", "TriggerDagRunOperator"]
