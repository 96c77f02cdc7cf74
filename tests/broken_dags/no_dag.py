# expect: 1: no DAG is defined in this file
from airstep import task


@task
def orphan():
    return 1
