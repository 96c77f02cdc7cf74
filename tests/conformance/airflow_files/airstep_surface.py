"""Written for Airflow 3.3 (unmodified under airstep): Airflow 2 and 3 import paths, pendulum dates,
chain_linear, edge labels, get_current_context, retries and trigger rules."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.decorators import dag, task
from airflow.exceptions import AirflowSkipException
from airflow.models.baseoperator import chain
from airflow.operators.python import PythonOperator, get_current_context
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Label, chain_linear
from airflow.utils.trigger_rule import TriggerRule


def flaky():
    context = get_current_context()
    if context["ti"].try_number < 2:
        raise RuntimeError("first try fails")
    return context["ti"].try_number


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    default_args={"retries": 1, "retry_delay": timedelta(0)},
    tags=["surface"],
)
def airstep_surface():
    start = EmptyOperator(task_id="start")
    retried = PythonOperator(task_id="retried", python_callable=flaky)
    echo = BashOperator(task_id="echo", bash_command="echo hello")

    @task
    def skip_me():
        raise AirflowSkipException("nothing to do")

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def summarize(tries):
        from airflow.sdk import get_current_context as imported_while_running

        return {"tries": tries, "has_run_id": imported_while_running()["run_id"].startswith("manual__")}

    skipped = skip_me()
    chain_linear(start, [retried, echo], skipped)
    total = summarize(retried.output)
    skipped >> Label("after the skip") >> total
    after = EmptyOperator(task_id="after_all_done", trigger_rule=TriggerRule.ALL_DONE)
    chain(total, after)


airstep_surface()
