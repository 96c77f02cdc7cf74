"""Airflow's EMR example as airstep runs it: create a cluster and wait until it is ready, add a Spark
step, wait for the step with a sensor, and terminate the cluster whatever happened. Every task is a
Step Functions call (`aws-sdk:emr`) with Wait states between checks: nothing of airstep's runs while
EMR works.

Locally moto keeps the cluster and the step (it runs no Spark: the step has completed by its first
check):
    airstep run examples/dags/emr_spark_pi.py
"""

from datetime import datetime

from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.sdk import DAG

SPARK_STEPS = [
    {
        "Name": "calculate_pi",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["/usr/lib/spark/bin/run-example", "SparkPi", "10"]},
    }
]
JOB_FLOW_OVERRIDES = {
    "Name": "PiCalc",
    "ReleaseLabel": "emr-7.0.0",
    "Applications": [{"Name": "Spark"}],
    "Instances": {
        "InstanceGroups": [
            {
                "Name": "Primary node",
                "Market": "ON_DEMAND",
                "InstanceRole": "MASTER",
                "InstanceType": "m5.xlarge",
                "InstanceCount": 1,
            },
        ],
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    },
    "JobFlowRole": "EMR_EC2_DefaultRole",
    "ServiceRole": "EMR_DefaultRole",
    "Tags": [{"Key": "team", "Value": "{{ dag.dag_id }}"}],
}

with DAG("emr_spark_pi", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["example"]):
    create = EmrCreateJobFlowOperator(
        task_id="create_job_flow", job_flow_overrides=JOB_FLOW_OVERRIDES, wait_for_completion=True, waiter_delay=30
    )
    add_steps = EmrAddStepsOperator(task_id="add_steps", job_flow_id=create.output, steps=SPARK_STEPS)
    watch_step = EmrStepSensor(
        task_id="watch_step",
        job_flow_id=create.output,
        step_id="{{ task_instance.xcom_pull(task_ids='add_steps', key='return_value')[0] }}",
        poke_interval=30,
        timeout=3 * 3600,
    )
    remove_cluster = EmrTerminateJobFlowOperator(
        task_id="remove_cluster", job_flow_id=create.output, trigger_rule="all_done"
    )
    create >> add_steps >> watch_step >> remove_cluster
