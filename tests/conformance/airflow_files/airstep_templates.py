"""Written for Airflow 3.3 (unmodified under airstep): Jinja templates in BashOperator (command, env,
a template file), PythonOperator (op_args, op_kwargs, templates_dict) and @task arguments; Airflow's
context (ds, ts, params, dag_run.conf, ti.xcom_pull, var, macros), its filters, user-defined macros
and filters, native rendering, and a template error failing its task. Values do not depend on the
logical date, so Airflow's and airstep's runs compare as they are."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task


def describe(first, second, templates_dict=None, **context):
    return {"first": first, "second": second, "templates_dict": templates_dict, "ds_is_str": isinstance(context["ds"], str)}


with DAG(
    "airstep_templates",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"greeting": "hello", "count": 3},
    user_defined_macros={"team": "data", "double": lambda x: 2 * x},
    user_defined_filters={"shout": lambda s: s.upper() + "!"},
):
    dates = BashOperator(
        task_id="dates",
        bash_command=(
            "echo {{ ds_nodash == ds | replace('-', '') }} {{ ts.startswith(ds) }} "
            "{{ macros.ds_add(ds, 1) > ds }} {{ macros.ds_format('2026-03-04', '%Y-%m-%d', '%d/%m/%Y') }} "
            "{{ logical_date | ds == ds }} {{ (macros.datetime(2026, 1, 1) + macros.timedelta(days=2)).day }}"
        ),
    )
    env = BashOperator(
        task_id="env",
        bash_command='echo "$GREETING $MESSAGE $TEAM"',
        env={"GREETING": "{{ params.greeting | shout }}", "MESSAGE": "{{ dag_run.conf.get('message', 'none') }}",
             "TEAM": "{{ team }}-{{ double(params.count) }}"},
    )
    from_file = BashOperator(task_id="from_file", bash_command="airstep_templates.sh")
    pulled = BashOperator(
        task_id="pulled",
        bash_command="echo {{ ti.xcom_pull(task_ids='env') | lower }} {{ var.value.get('missing_variable', 'fallback') }}",
    )
    python = PythonOperator(
        task_id="python",
        python_callable=describe,
        op_args=["{{ params.greeting }}"],
        op_kwargs={"second": ["{{ params.count * 2 }}", 7]},
        templates_dict={"key": "{{ task.task_id }}-{{ run_id.startswith('manual') }}"},
    )
    broken = BashOperator(task_id="broken", bash_command="echo {{ no_such_name }}")

    @task
    def taskflow(text, number):
        return f"{text}|{number}"

    env >> pulled
    [dates, from_file, pulled, python] >> taskflow("{{ params.greeting }}-{{ task.task_id }}", 5)


with DAG(
    "airstep_templates_native",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"numbers": [1, 2, 3]},
    render_template_as_native_obj=True,
):

    def total(numbers, count):
        return {"sum": sum(numbers), "count": count, "types": [type(numbers).__name__, type(count).__name__]}

    PythonOperator(
        task_id="native",
        python_callable=total,
        op_kwargs={"numbers": "{{ params.numbers }}", "count": "{{ params.numbers | length }}"},
    )


class Query:
    """An object held in a template field with template_fields of its own: Airflow renders them."""

    template_fields = ("sql", "parameters")

    def __init__(self, sql, parameters):
        self.sql = sql
        self.parameters = parameters


def run_query(query):
    return [query.sql, query.parameters]


with DAG("airstep_templates_nested", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonOperator(
        task_id="nested",
        python_callable=run_query,
        op_kwargs={"query": Query("select * from t where day = '{{ ds }}'", {"run": "{{ run_id[:6] }}"})},
    )
