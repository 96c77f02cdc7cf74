"""Written for Airflow 3.3 (unmodified under airstep): `@task.bash` - the function's return value
is the command, rendered as a template; arguments rendered first; context keys as arguments; exit 99
and AirflowSkipException skip; a failing command fails; output_processor and multiple_outputs; env
from an upstream's XComs (which makes the edge)."""

from __future__ import annotations

import json

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, dag, task
from airflow.sdk.exceptions import AirflowSkipException


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params={"word": "hello"})
def airstep_bash_decorator():
    @task.bash
    def templated() -> str:
        return 'echo "{{ ds }} {{ task.task_id }}"'

    @task.bash
    def with_context(ds_nodash, word: str) -> str:
        return f"echo {word}-{ds_nodash}"

    @task.bash
    def skips() -> str:
        return "echo about to skip; exit 99"

    @task.bash
    def fails() -> str:
        return "echo about to fail; exit 3"

    @task.bash
    def skipped_in_python(day: str) -> str:
        if day == "saturday":
            return "echo weekend"
        raise AirflowSkipException(f"not on {day}")

    @task.bash(multiple_outputs=True, output_processor=json.loads)
    def numbers() -> str:
        return """printf '{"count": "3", "name": "three"}\\n'"""

    @task.bash
    def uses_env() -> str:
        return 'echo "$NAME has $COUNT"'

    templated()
    with_context(word="{{ params.word }}")
    skips()
    fails()
    skipped_in_python(day="{{ logical_date.strftime('%A').lower() }}")
    produced = numbers()
    uses_env.override(env={"NAME": produced["name"], "COUNT": produced["count"]})()


airstep_bash_decorator()


with DAG("airstep_bash_output", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    # the XCom is the last line read on "\n" (a carriage return stays in it), "" after a blank line
    # or no output at all
    BashOperator(task_id="carriage_return", bash_command="printf 'a\\rb\\n'")
    BashOperator(task_id="blank_last", bash_command="echo a; echo")
    BashOperator(task_id="silent", bash_command="true")
    BashOperator(task_id="stderr_last", bash_command="echo out; echo err >&2")
    # an upstream output assigned to a template field after the operator is built makes the edge
    produced = BashOperator(task_id="produce", bash_command="echo made")
    consume = BashOperator(task_id="consume", bash_command='echo "got $GOT"', env={})
    consume.env = {"GOT": produced.output}
