# expect: 4: DAG 'empty' has no tasks
from airstep import DAG

with DAG("empty"):
    pass
