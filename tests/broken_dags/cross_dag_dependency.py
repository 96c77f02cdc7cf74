# expect: 9: tasks belong to different DAGs
from airstep import DAG, EmptyOperator

with DAG("first") as first:
    a = EmptyOperator(task_id="a")

with DAG("second"):
    b = EmptyOperator(task_id="b")
    a >> b
