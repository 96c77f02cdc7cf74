# expect: 6: param 'since' is not JSON-serialisable (datetime)
from datetime import datetime

from airstep import DAG, EmptyOperator

with DAG("bad_params", params={"since": datetime(2026, 1, 1)}):
    EmptyOperator(task_id="t")
