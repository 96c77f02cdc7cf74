"""Bash tasks: environment, working directory, the last stdout line as the return value."""

from datetime import datetime

from airstep import DAG, BashOperator, task

with DAG("bash_task", schedule="0 6 * * 1-5", start_date=datetime(2026, 1, 1), tags=["example"]):
    greet = BashOperator(
        task_id="greet",
        bash_command='echo "hello from $AIRFLOW_CTX_DAG_ID"; echo "$GREETING, $AIRFLOW_CTX_TASK_ID"',
        env={"GREETING": "bonjour"},
        append_env=True,
    )
    where = BashOperator(task_id="where", bash_command="pwd", cwd="/tmp")

    @task
    def shout(greeting: str, folder: str) -> str:
        return f"{greeting.upper()} in {folder}"

    greet >> where
    shout(greet.output, where.output)
