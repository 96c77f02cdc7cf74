"""Written for Airflow 3.3 (unmodified under airstep): keyed XComs, multiple_outputs (declared and
inferred from a dict return annotation), XComArg["key"], do_xcom_push=False, pulling several tasks,
and what a skipped or failed task pushed before it ended."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TriggerRule, task
from airflow.sdk.exceptions import AirflowSkipException


def push_then_skip(ti=None):
    ti.xcom_push(key="note", value="pushed before the skip")
    raise AirflowSkipException("skipping")


def check(ti=None):
    assert ti.xcom_pull(task_ids="totals", key="count") == 3
    assert ti.xcom_pull(task_ids="totals") == {"count": 3, "total": 6}
    assert ti.xcom_pull(task_ids=["totals", "quiet"]) == [{"count": 3, "total": 6}, None]
    assert ti.xcom_pull(task_ids="quiet") is None
    assert ti.xcom_pull(task_ids="echo") == "last line"
    assert ti.xcom_pull(task_ids="skipper", key="note") == "pushed before the skip"
    assert ti.xcom_pull(task_ids="totals", key="absent") is None
    ti.xcom_push(key="own", value=[1, 2])
    assert ti.xcom_pull(key="own") == [1, 2]
    return "checked"


with DAG("airstep_xcoms", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def totals() -> dict[str, int]:
        return {"count": 3, "total": 6}

    @task(multiple_outputs=True)
    def declared():
        return {"a": 1, "b": "two"}

    @task
    def use(count, total, b):
        return f"{count}/{total}/{b}"

    quiet = PythonOperator(task_id="quiet", python_callable=lambda: "not pushed", do_xcom_push=False)
    echo = BashOperator(task_id="echo", bash_command="echo first; echo last line")
    skipper = PythonOperator(task_id="skipper", python_callable=push_then_skip)
    checker = PythonOperator(task_id="check", python_callable=check, trigger_rule=TriggerRule.ALL_DONE)
    t, d = totals(), declared()
    [t, quiet, echo, skipper] >> checker
    use(t["count"], t["total"], d["b"]) >> checker
