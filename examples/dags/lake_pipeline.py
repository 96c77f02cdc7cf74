"""A day of orders through the lake: wait for the export in S3, clean it with a Glue job, count it
with Athena, rebuild the search index for 20 minutes in a container (Airflow's ECS executor: longer
than a Lambda may run), then score the day with a Lambda function. Only the index rebuild runs task
code; everything else is a Step Functions call, and nothing of airstep's runs while AWS works or
the sensor waits. (`land` stands in for the upstream system that writes the export.)

Locally the rebuild is as long as the run's conf says:
    airstep run examples/dags/lake_pipeline.py --conf '{"rebuild_minutes": 0.05}' \\
        --lambda score=examples/functions/score.py:handler
"""

import time
from datetime import datetime, timedelta

from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.s3 import S3CreateObjectOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, task

ORDERS = "s3://example-lake/incoming/{{ ds }}/orders.csv"

with DAG(
    "lake_pipeline",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"rebuild_minutes": 20},
    tags=["example"],
):
    land = S3CreateObjectOperator(task_id="land", s3_key=ORDERS, data="id,amount\n1,30\n2,12\n", replace=True)
    exported = S3KeySensor(task_id="exported", bucket_key=ORDERS, poke_interval=60, timeout=6 * 3600)
    clean = GlueJobOperator(task_id="clean", job_name="lake-clean-orders", script_args={"--day": "{{ ds }}"})
    count = AthenaOperator(
        task_id="count",
        query="SELECT count(*) FROM lake.orders WHERE day = '{{ ds }}'",
        database="lake",
        output_location="s3://example-lake/athena-results/",
    )

    @task(
        executor="airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor",
        execution_timeout=timedelta(minutes=45),
        executor_config={"overrides": {"cpu": "2048", "memory": "4096"}},
        retries=1,
    )
    def rebuild_index(query_id: str, params=None, ds=None) -> dict:
        """Rebuilds the day's search index: CPU-bound, about 20 minutes a day."""
        ends = time.monotonic() + float(params["rebuild_minutes"]) * 60
        batches = 0
        while time.monotonic() < ends:
            time.sleep(min(1.0, max(ends - time.monotonic(), 0)))
            batches += 1
        print(f"rebuilt the index for {ds} in {batches} batches (query {query_id})")
        return {"day": ds, "rows": 100 * batches}

    score = LambdaInvokeFunctionOperator(
        task_id="score", function_name="score", payload="{{ ti.xcom_pull(task_ids='rebuild_index') | tojson }}"
    )
    land >> exported >> clean >> count
    rebuild_index(count.output) >> score
