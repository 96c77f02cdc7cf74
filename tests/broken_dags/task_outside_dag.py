# expect: 4: task 'lonely' is not inside a DAG
from airstep import EmptyOperator

EmptyOperator(task_id="lonely")
