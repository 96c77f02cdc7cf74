# expect: 4: dag_id 'my:dag' may contain only letters, digits
from airstep import DAG, EmptyOperator

with DAG("my:dag"):
    EmptyOperator(task_id="t")
