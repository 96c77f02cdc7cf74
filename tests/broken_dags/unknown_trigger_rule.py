# expect: 5: unknown trigger_rule 'all_good'
from airstep import DAG, EmptyOperator

with DAG("bad_rule"):
    EmptyOperator(task_id="t", trigger_rule="all_good")
