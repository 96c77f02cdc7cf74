"""AWS work without task code: an S3 object written, a Glue job run and waited for, a Glue crawler run
and checked on until it is done, an Athena query run and waited for, a Lambda function invoked, an
SNS topic told, an SQS queue fed, and the object archived and tidied away, each as Step Functions
calls (no airstep Lambda runs while AWS does the work); a sensor waits for the object with S3 list
calls and Wait states (no Lambda pokes).

Locally, moto keeps the objects, runs the Glue job (it runs no script), the crawler (it reads
nothing) and the query (it reads nothing and succeeds), receives the message and the queued body,
and the function runs from its source:
    airstep run examples/dags/aws_calls.py --lambda score=examples/functions/score.py:handler
"""

from datetime import datetime

from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerRunOperator
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.s3 import (
    S3CopyObjectOperator,
    S3CreateObjectOperator,
    S3DeleteObjectsOperator,
)
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.operators.sqs import SqsPublishOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, task

with DAG("aws_calls", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["example"]):

    @task
    def extract() -> dict:
        return {"rows": 120, "day": "2026-01-01"}

    land = S3CreateObjectOperator(
        task_id="land",
        s3_key="s3://example-lake/raw/{{ ds }}.json",
        data="{{ ti.xcom_pull(task_ids='extract') | tojson }}",
        replace=True,
    )
    landed = S3KeySensor(
        task_id="landed", bucket_key="s3://example-lake/raw/{{ ds }}.json", poke_interval=60, timeout=3600
    )
    transform = GlueJobOperator(  # Step Functions waits for the run: no compute of ours meanwhile
        task_id="transform",
        job_name="daily-transform",
        script_args={"--day": "{{ ds }}"},
        run_job_kwargs={"NumberOfWorkers": 2, "WorkerType": "G.1X"},
    )
    catalog = GlueCrawlerRunOperator(task_id="catalog", crawler_name="daily-tables", poll_interval=30)
    count = AthenaOperator(  # Step Functions waits for the query; its execution id is the XCom
        task_id="count",
        query="SELECT count(*) FROM daily_tables.events WHERE day = '{{ ds }}'",
        database="daily_tables",
        output_location="s3://example-lake/athena-results/",
    )
    score = LambdaInvokeFunctionOperator(
        task_id="score",
        function_name="score",
        payload="{{ ti.xcom_pull(task_ids='extract') | tojson }}",  # rendered before the call
        retries=2,
    )
    notify = SnsPublishOperator(
        task_id="notify",
        target_arn="arn:aws:sns:us-east-1:123456789012:pipeline-events",
        message="scored {{ ds }}: {{ ti.xcom_pull(task_ids='score') }}",
        subject="daily scores",
    )
    enqueue = SqsPublishOperator(  # no template: nothing but the call runs for it
        task_id="enqueue",
        sqs_queue="https://sqs.us-east-1.amazonaws.com/123456789012/reports",
        message_content="build the daily report",
    )
    keep = S3CopyObjectOperator(
        task_id="keep",
        source_bucket_key="s3://example-lake/raw/{{ ds }}.json",
        dest_bucket_key="s3://example-lake/archive/{{ ds }}.json",
    )
    tidy = S3DeleteObjectsOperator(task_id="tidy", bucket="example-lake", keys="raw/{{ ds }}.json")
    extracted = extract()
    extracted >> land >> landed >> transform >> catalog >> count >> score >> notify >> enqueue >> keep >> tidy
    extracted >> score  # score reads what extract returned
