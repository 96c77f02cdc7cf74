# expect: 6: duplicate task_id 'load' in DAG 'dupes' (first defined at line 5)
from airstep import DAG, EmptyOperator

with DAG("dupes"):
    EmptyOperator(task_id="load")
    EmptyOperator(task_id="load")
