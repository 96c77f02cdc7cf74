# expect: 8: dag_id 'twice' is defined twice (first at line 4)
from airstep import DAG, EmptyOperator

with DAG("twice"):
    EmptyOperator(task_id="a")


with DAG("twice"):
    EmptyOperator(task_id="b")
