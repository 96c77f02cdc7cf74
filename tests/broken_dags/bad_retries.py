# expect: 5: retries must be a whole number >= 0, got -1
from airstep import DAG, EmptyOperator

with DAG("bad_retries"):
    EmptyOperator(task_id="t", retries=-1)
