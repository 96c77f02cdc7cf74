"""Written for Airflow 3.3 (unmodified under airstep): setup and teardown tasks. Teardowns run after
their work whatever it did, are skipped or upstream_failed by their setups' outcome, and do not
decide the run's state unless on_failure_fail_dagrun=True; a failed setup fails the work that needs
it, directly or not (the setup constraint); context-manager scopes, nested; a short circuit does
not skip a teardown; a task group's leaves stop before its teardown."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator
from airflow.sdk import DAG, TaskGroup, setup, task, teardown
from airflow.utils.trigger_rule import TriggerRule

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def fail():
    raise ValueError("this task fails")


with DAG("airstep_setup_teardown_outcomes", schedule=None, start_date=START):
    # work fails: its teardown still runs; the run fails through the work, not the teardown
    make = EmptyOperator(task_id="make").as_setup()
    work = PythonOperator(task_id="work", python_callable=fail)
    after_work = EmptyOperator(task_id="after_work", trigger_rule=TriggerRule.ALL_DONE)
    clean = EmptyOperator(task_id="clean").as_teardown(setups=make)
    make >> work >> after_work >> clean

    # a setup fails: the work is upstream_failed, so is the teardown (no setup succeeded), and a task
    # two steps away with all_done is upstream_failed too (the setup constraint)
    bad_setup = PythonOperator(task_id="bad_setup", python_callable=fail).as_setup()
    needs_it = EmptyOperator(task_id="needs_it")
    two_away = EmptyOperator(task_id="two_away", trigger_rule=TriggerRule.ALL_DONE)
    bad_clean = EmptyOperator(task_id="bad_clean").as_teardown(setups=bad_setup)
    bad_setup >> needs_it >> two_away >> bad_clean

    # two setups, one fails: the teardown runs (one of its setups succeeded)
    ok_setup = EmptyOperator(task_id="ok_setup").as_setup()
    failing_setup = PythonOperator(task_id="failing_setup", python_callable=fail).as_setup()
    both_clean = EmptyOperator(task_id="both_clean").as_teardown(setups=[ok_setup, failing_setup])
    [ok_setup, failing_setup] >> EmptyOperator(task_id="both_work") >> both_clean

    # a short circuit skips the work but never the teardown; the skipped setup's teardown is skipped
    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)
    gated_setup = EmptyOperator(task_id="gated_setup").as_setup()
    gated_clean = EmptyOperator(task_id="gated_clean").as_teardown(setups=gated_setup)
    gate >> gated_setup >> EmptyOperator(task_id="gated_work") >> gated_clean
    short = ShortCircuitOperator(task_id="short", python_callable=lambda: None)
    kept_setup = EmptyOperator(task_id="kept_setup").as_setup()
    kept_clean = EmptyOperator(task_id="kept_clean").as_teardown(setups=kept_setup)
    kept_setup >> short >> EmptyOperator(task_id="short_work") >> kept_clean


with DAG("airstep_teardown_fails_quietly", schedule=None, start_date=START):
    quiet_setup = EmptyOperator(task_id="quiet_setup").as_setup()
    quiet_setup >> EmptyOperator(task_id="quiet_work") >> PythonOperator(
        task_id="quiet_teardown", python_callable=fail
    ).as_teardown(setups=quiet_setup)


with DAG("airstep_teardown_fails_the_run", schedule=None, start_date=START):
    loud_setup = EmptyOperator(task_id="loud_setup").as_setup()
    loud_setup >> EmptyOperator(task_id="loud_work") >> PythonOperator(
        task_id="loud_teardown", python_callable=fail
    ).as_teardown(setups=loud_setup, on_failure_fail_dagrun=True)


with DAG("airstep_setup_teardown_scopes", schedule=None, start_date=START):

    @setup
    def create_cluster():
        return "cluster-1"

    @teardown
    def delete_cluster(cluster_id):
        return f"deleted {cluster_id}"

    @task
    def use(cluster_id):
        return f"used {cluster_id}"

    @teardown(on_failure_fail_dagrun=True)
    def inner_teardown():
        return "inner done"

    @setup
    def inner_setup():
        return "inner ready"

    cluster = create_cluster()
    # scopes: the work inside gets the setup upstream and the teardown downstream; nested scopes
    # chain setup to setup and teardown to teardown
    with delete_cluster(cluster):
        use(cluster)
        with inner_setup() >> inner_teardown():
            EmptyOperator(task_id="inner_work_a") >> EmptyOperator(task_id="inner_work_b")

    # a group whose teardown is its last task: `group >> after` starts from the work before it
    with TaskGroup("grouped") as grouped:
        group_setup = BashOperator(task_id="group_setup", bash_command="echo up").as_setup()
        group_work = BashOperator(task_id="group_work", bash_command="echo work")
        group_teardown = BashOperator(task_id="group_teardown", bash_command="echo down").as_teardown(
            setups=group_setup
        )
        group_setup >> group_work >> group_teardown
    grouped >> EmptyOperator(task_id="after_group")
