# expect: 4: unknown schedule preset '@fortnightly'
from airstep import DAG, EmptyOperator

with DAG("bad_preset", schedule="@fortnightly"):
    EmptyOperator(task_id="t")
