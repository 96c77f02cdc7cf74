# expect: 5: task_id 'load data' may contain only letters, digits, '_', '.' and '-'
from airstep import DAG, EmptyOperator

with DAG("bad_ids"):
    EmptyOperator(task_id="load data")
