# expect: 9: DAG 'cycle' has a cycle: a -> b -> c -> a
from airstep import DAG, EmptyOperator

with DAG("cycle"):
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    c = EmptyOperator(task_id="c")
    a >> b >> c
    c >> a
