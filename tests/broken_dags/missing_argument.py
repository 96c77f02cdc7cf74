# expect: 10: task 'add' is missing argument(s): b
from airstep import DAG, task


@task
def add(a: int, b: int) -> int:
    return a + b

with DAG("missing_arg"):
    add(1)
