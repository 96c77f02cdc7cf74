"""`airstep compat`: the migration report names every unsupported feature, file:line, and exits 1."""

from __future__ import annotations

import json
import textwrap

from test_cli import airstep

from conformance.recorded import AIRFLOW_FILES

LACKS = """\
import pendulum
from airflow.sdk import DAG, AssetAlias, task
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator
from airflow.providers.standard.operators.bash import BashOperator

with DAG("lacks", start_date=pendulum.datetime(2026, 1, 1), default_args={"email": ["a@b.c"]}):
    @task.virtualenv
    def pick():
        return "a"

    BashOperator(
        task_id="a",
        bash_command="true",
        depends_on_past=True,
    )

    @task
    def remember(table, task_state_store=None):
        return table
"""


def test_compat_names_each_unsupported_feature_and_exits_1(tmp_path):
    (tmp_path / "lacks.py").write_text(LACKS)
    (tmp_path / "helpers.py").write_text("def helper():\n    return 1\n")  # not a DAG file: Airflow skips it too
    proc = airstep("compat", str(tmp_path))
    assert proc.returncode == 1
    where = str(tmp_path / "lacks.py")
    assert proc.stdout.splitlines() == [
        f"{where}:2: `airflow.sdk.AssetAlias` is not supported by airstep",
        f"{where}:3: `airflow.providers.amazon.aws.operators.sagemaker` is not supported by airstep",
        f"{where}:7: `task.virtualenv` is not supported by airstep",
        f"{where}:14: `BashOperator(depends_on_past=...)` is not supported by airstep",
        f"{where}:18: the context key `task_state_store` is not supported by airstep",
        "1 file(s): 0 run on airstep as they are, 1 do not",
    ]


def test_compat_reports_what_stops_a_file_at_load_time(tmp_path):
    dag_file = tmp_path / "defaults.py"
    dag_file.write_text(
        textwrap.dedent(
            """
            from airflow.sdk import DAG
            from airflow.operators.empty import EmptyOperator
            with DAG("defaults", default_args={"depends_on_past": False, "email_on_failure": True}):
                EmptyOperator(task_id="t")
            """
        )
    )
    proc = airstep("compat", str(dag_file), "--json")
    assert proc.returncode == 1
    [finding] = json.loads(proc.stdout)["findings"]
    assert finding["line"] == 4 and "'depends_on_past'" in finding["message"]


REFUSING = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator, EmrCreateJobFlowOperator
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from cleaning import cleaner

with DAG("many", schedule=None, start_date=datetime(2026, 1, 1)):
    create = EmrCreateJobFlowOperator(task_id="create", emr_conn_id="emr_prod")
    add = EmrAddStepsOperator(task_id="add", job_flow_name="etl", steps=[])
    watch = EmrStepSensor(task_id="watch", job_flow_id=create.output, step_id="{{ ti.xcom_pull('add')[0] }}")
    for zone in ("raw", "staged"):
        create >> add >> watch >> cleaner(zone)
"""
CLEANING = """
from airflow.providers.amazon.aws.operators.s3 import S3DeleteObjectsOperator

def cleaner(zone):
    return S3DeleteObjectsOperator(task_id=f"clean_{zone}", bucket="lake", prefix=f"{zone}/tmp/")
"""


def test_compat_names_every_operator_that_refuses_its_arguments_where_validate_stops_at_the_first(tmp_path):
    """Each at the DAG file's line that built it: two from one line (a loop, a helper module) are two."""
    (tmp_path / "many.py").write_text(REFUSING)
    (tmp_path / "cleaning.py").write_text(CLEANING)
    proc = airstep("compat", "many.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert [line.split(" is not translated")[0] for line in proc.stdout.splitlines()] == [
        "many.py:9: EmrCreateJobFlowOperator 'create': emr_conn_id",
        "many.py:10: EmrAddStepsOperator 'add': job_flow_name",
        "many.py:13: S3DeleteObjectsOperator 'clean_raw': prefix",
        "many.py:13: S3DeleteObjectsOperator 'clean_staged': prefix",
        "1 file(s): 0 run on airstep as they are, 1 do not",
    ]
    assert proc.stdout.count(f"(at {tmp_path / 'cleaning.py'}:5)") == 2
    validated = airstep("validate", "many.py", cwd=tmp_path)  # as Airflow's import error: the first
    assert validated.returncode == 1
    assert validated.stderr.startswith("many.py:9: EmrCreateJobFlowOperator 'create': emr_conn_id is not translated")
    assert "many.py:10" not in validated.stderr


def test_compat_passes_airflow_files_that_run(tmp_path):
    proc = airstep("compat", str(AIRFLOW_FILES))
    assert proc.returncode == 0, proc.stdout
    count = len(list(AIRFLOW_FILES.glob("*.py")))
    assert proc.stdout.splitlines() == [f"{count} file(s): {count} run on airstep as they are, 0 do not"]


def test_a_parameter_named_like_an_import_is_not_that_import(tmp_path):
    """Airflow's example_passing_params_via_test_command reads `task.params` from the context's task."""
    dag_file = tmp_path / "shadowed.py"
    dag_file.write_text(
        textwrap.dedent(
            """
            from airflow.sdk import DAG, task

            with DAG("shadowed", schedule=None):
                @task
                def show(task=None, **context):
                    return task.params

                show()
            task.virtualenv
            """
        )
    )
    proc = airstep("compat", str(dag_file))
    assert proc.stdout.splitlines()[0] == f"{dag_file}:10: `task.virtualenv` is not supported by airstep"
