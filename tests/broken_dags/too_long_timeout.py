# expect: 7: execution_timeout of 3600 s exceeds the 900 s that a Lambda task can run
from datetime import timedelta

from airstep import DAG, EmptyOperator

with DAG("long_task"):
    EmptyOperator(task_id="t", execution_timeout=timedelta(hours=1))
