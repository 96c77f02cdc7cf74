# expect: 4: schedule '0 25 * * *' is not a valid cron expression
from airstep import DAG, EmptyOperator

with DAG("bad_schedule", schedule="0 25 * * *"):
    EmptyOperator(task_id="t")
