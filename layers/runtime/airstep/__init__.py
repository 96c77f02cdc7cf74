"""airstep: Airflow-style DAGs compiled to AWS Step Functions.

Write DAG files with Airflow 3 names::

    from airstep import DAG, task

    with DAG("etl", schedule="@daily"):
        @task
        def extract() -> list[int]:
            return [1, 2, 3]

        @task
        def load(rows: list[int]) -> None:
            print(sum(rows))

        load(extract())
"""

from airstep.connections import BaseHook, Connection, Variable
from airstep.errors import AirflowFailException, AirflowSkipException, DagDefinitionError
from airstep.sdk.assets import Asset, AssetAll, AssetAny, AssetWatcher
from airstep.sdk.baseoperator import BaseOperator
from airstep.sdk.dag import DAG, dag
from airstep.sdk.dependencies import Label, chain, chain_linear, cross_downstream
from airstep.sdk.operators import BashOperator, EmptyOperator, PythonOperator, TriggerDagRunOperator
from airstep.sdk.taskflow import task
from airstep.sdk.taskgroup import TaskGroup, task_group
from airstep.sdk.triggers import MessageQueueTrigger
from airstep.sdk.xcom_arg import XComArg
from airstep.secrets_masker import mask_secret
from airstep.trigger_rule import TriggerRule

__all__ = [
    "DAG",
    "AirflowFailException",
    "AirflowSkipException",
    "Asset",
    "AssetAll",
    "AssetAny",
    "AssetWatcher",
    "BaseHook",
    "BaseOperator",
    "BashOperator",
    "Connection",
    "DagDefinitionError",
    "EmptyOperator",
    "Label",
    "MessageQueueTrigger",
    "PythonOperator",
    "TaskGroup",
    "TriggerDagRunOperator",
    "TriggerRule",
    "Variable",
    "XComArg",
    "chain",
    "chain_linear",
    "cross_downstream",
    "dag",
    "mask_secret",
    "task",
    "task_group",
]
