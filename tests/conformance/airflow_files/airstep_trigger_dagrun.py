"""TriggerDagRunOperator's outcomes (without wait_for_completion: dag.test() never runs the run it
triggers, so a wait would never end): a run triggered, one that exists already (failed without
retries, or skipped), a DAG that does not exist and a conf its params refuse (both retried)."""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, task

with DAG(
    "airstep_trigger_target", schedule=None, start_date=datetime(2026, 1, 1), params={"x": Param(1, type="integer")}
):

    @task
    def double(params=None):
        return params["x"] * 2

    double()

retry = {"retries": 1, "retry_delay": timedelta(seconds=0)}
with DAG("airstep_trigger_controller", schedule=None, start_date=datetime(2026, 1, 1), default_args=retry):
    fixed = "fixed_{{ run_id }}"  # a new id per run of this DAG, so that the first trigger always starts one
    first = TriggerDagRunOperator(
        task_id="first", trigger_dag_id="airstep_trigger_target", trigger_run_id=fixed, conf={"x": 2}
    )
    again = TriggerDagRunOperator(task_id="again", trigger_dag_id="airstep_trigger_target", trigger_run_id=fixed)
    skip = TriggerDagRunOperator(
        task_id="skip", trigger_dag_id="airstep_trigger_target", trigger_run_id=fixed, skip_when_already_exists=True
    )
    missing = TriggerDagRunOperator(task_id="missing", trigger_dag_id="airstep_no_such_dag")
    bad_conf = TriggerDagRunOperator(task_id="bad_conf", trigger_dag_id="airstep_trigger_target", conf={"x": "a"})

    @task(trigger_rule="all_done")
    def after(ti=None, run_id=None):
        return ti.xcom_pull(task_ids="first", key="trigger_run_id") == f"fixed_{run_id}"

    pulled = after()
    first >> [again, skip, missing, bad_conf] >> pulled
    first >> pulled
