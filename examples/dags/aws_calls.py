"""AWS work without task code: a Glue job run and waited for, a Glue crawler run and checked on until
it is done, a Lambda function invoked, an SNS topic told and an SQS queue fed, each as Step Functions
calls (no airstep Lambda runs while AWS does the work).

Locally, moto runs the Glue job (it runs no script) and the crawler (it reads nothing), receives the
message and the queued body, and the function runs from its source:
    airstep run examples/dags/aws_calls.py --lambda score=examples/functions/score.py:handler
"""

from datetime import datetime

from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerRunOperator
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.operators.sqs import SqsPublishOperator
from airflow.sdk import DAG, task

with DAG("aws_calls", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["example"]):

    @task
    def extract() -> dict:
        return {"rows": 120, "day": "2026-01-01"}

    transform = GlueJobOperator(  # Step Functions waits for the run: no compute of ours meanwhile
        task_id="transform",
        job_name="daily-transform",
        script_args={"--day": "{{ ds }}"},
        run_job_kwargs={"NumberOfWorkers": 2, "WorkerType": "G.1X"},
    )
    catalog = GlueCrawlerRunOperator(task_id="catalog", crawler_name="daily-tables", poll_interval=30)
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
    extracted = extract()
    extracted >> transform >> catalog >> score >> notify >> enqueue
    extracted >> score  # score reads what extract returned
