"""Written for Airflow 3.3 (unmodified under airstep): branching and short-circuiting. A branch
following a list, a task group, nothing (None); the join right after a branch; a custom
BaseBranchOperator; short circuits with and without ignore_downstream_trigger_rules; and how skips
travel through trigger rules (all_done runs, none_failed_min_one_success, one_success, all_success)."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, ShortCircuitOperator
from airflow.sdk import DAG, TaskGroup, task
from airflow.utils.trigger_rule import TriggerRule


class PickSecond(BaseBranchOperator):
    def choose_branch(self, context):
        return ["second"]


with DAG("airstep_branching", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    # a branch following two of three paths, and the join right behind it
    pick = BranchPythonOperator(task_id="pick", python_callable=lambda: ["left", "middle"])
    left, middle, right = (EmptyOperator(task_id=name) for name in ("left", "middle", "right"))
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    pick >> [left, middle, right] >> join
    pick >> join
    after_right = EmptyOperator(task_id="after_right", trigger_rule=TriggerRule.ALL_DONE)
    strict_after_right = EmptyOperator(task_id="strict_after_right")
    right >> [after_right, strict_after_right]

    # a branch into a task group, by the group's id
    @task.branch
    def into_group():
        return "chosen"

    with TaskGroup("chosen") as chosen:
        EmptyOperator(task_id="inside") >> EmptyOperator(task_id="inside_next")
    other = EmptyOperator(task_id="other")
    either = EmptyOperator(task_id="either", trigger_rule=TriggerRule.ONE_SUCCESS)
    into_group() >> [chosen, other] >> either

    # a branch that follows nothing
    none = BranchPythonOperator(task_id="none", python_callable=lambda: None)
    none >> [EmptyOperator(task_id="none_a"), EmptyOperator(task_id="none_b", trigger_rule=TriggerRule.ALL_DONE)]

    # a custom branch operator
    PickSecond(task_id="custom") >> [EmptyOperator(task_id="first"), EmptyOperator(task_id="second")]

    # short circuits: everything downstream, or only the direct downstream
    everything = ShortCircuitOperator(task_id="everything", python_callable=lambda: 0)
    direct = ShortCircuitOperator(
        task_id="direct", python_callable=lambda: [], ignore_downstream_trigger_rules=False
    )
    passes = ShortCircuitOperator(task_id="passes", python_callable=lambda: "yes")
    for circuit in (everything, direct, passes):
        step = EmptyOperator(task_id=f"{circuit.task_id}_step")
        done = EmptyOperator(task_id=f"{circuit.task_id}_done", trigger_rule=TriggerRule.ALL_DONE)
        circuit >> step >> done

    @task.short_circuit
    def keep_going():
        return True

    @task
    def after_keep_going():
        return "ran"

    keep_going() >> after_keep_going()
