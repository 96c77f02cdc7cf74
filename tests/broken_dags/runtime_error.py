# expect: 6: ZeroDivisionError: division by zero
from airstep import DAG, EmptyOperator


def helper():
    return 1 / 0

with DAG("boom"):
    EmptyOperator(task_id=f"t{helper()}")
