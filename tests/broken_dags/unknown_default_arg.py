# expect: 6: unknown default_args key(s) 'email_on_failure'
from datetime import datetime

from airstep import DAG, EmptyOperator

with DAG("unknown_default", start_date=datetime(2026, 1, 1), default_args={"retries": 1, "email_on_failure": True}):
    EmptyOperator(task_id="t")
