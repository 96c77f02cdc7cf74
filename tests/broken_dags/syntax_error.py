# expect: 6: SyntaxError:
from airstep import DAG, EmptyOperator

with DAG("syntax"):
    EmptyOperator(task_id="t")
    if True
        pass
