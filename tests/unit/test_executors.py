"""`executor=` and `executor_config` on a task: the names Airflow lets a DAG use for the amazon
provider's ECS executor (module path, class name, an alias from `[core] executor`), the worker
executors that run on Lambda, and what a Fargate task may be sized to."""

from datetime import datetime

import pytest

from airstep import DAG, EmptyOperator, task
from airstep.containers import ContainerPolicy
from airstep.errors import DagDefinitionError
from airstep.model import DagModel
from airstep.sdk.executors import ECS_EXECUTOR, EXECUTOR_SETTING_ENV
from airstep.sdk.sensors import BaseSensorOperator


def _container(**arguments):
    with DAG("d", start_date=datetime(2026, 1, 1), schedule=None) as dag:

        @task(**arguments)
        def work():
            return 1

        work()
    model = DagModel.from_dag(dag)
    return model.task_map["work"].container


@pytest.mark.parametrize("name", [ECS_EXECUTOR, "AwsEcsExecutor"])
def test_the_ecs_executor_by_module_path_or_class_name_runs_the_task_in_a_container(name):
    assert _container(executor=name) == ContainerPolicy(1024, 2048)


@pytest.mark.parametrize(
    "setting",
    [f"LocalExecutor,long:{ECS_EXECUTOR}", f"CeleryExecutor, long:{ECS_EXECUTOR};team_a=LocalExecutor"],
)
def test_an_alias_from_airflows_executor_setting_names_it_too(monkeypatch, setting):
    monkeypatch.setenv(EXECUTOR_SETTING_ENV, setting)
    assert _container(executor="long") == ContainerPolicy(1024, 2048)
    assert _container() is None  # the setting's first executor, the default, runs on Lambda


def test_the_ecs_executor_first_in_the_setting_is_the_default(monkeypatch):
    monkeypatch.setenv(EXECUTOR_SETTING_ENV, "AwsEcsExecutor,LocalExecutor")
    assert _container() == ContainerPolicy(1024, 2048)
    assert _container(executor="LocalExecutor") is None
    assert _container(queue="warehouse") is None  # a queue's executor function, as the task asks

    class Waits(BaseSensorOperator):
        def poke(self, context):
            return True

    with DAG("d", start_date=datetime(2026, 1, 1), schedule=None):  # no task code to run there: on Lambda
        assert Waits(task_id="waits").container is None
        assert EmptyOperator(task_id="nothing").container is None


def test_an_alias_only_a_team_defines_is_not_known(monkeypatch):
    monkeypatch.setenv(EXECUTOR_SETTING_ENV, f"LocalExecutor;team_a=long:{ECS_EXECUTOR}")
    with pytest.raises(DagDefinitionError, match="executor 'long' is not one airstep runs"):
        _container(executor="long")


@pytest.mark.parametrize(
    "name",
    [
        None,
        "LocalExecutor",
        "CeleryExecutor",
        "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
        "AwsLambdaExecutor",
    ],
)
def test_worker_executors_run_the_task_on_lambda(name):
    assert _container(executor=name) is None


@pytest.mark.parametrize("name", ["KubernetesExecutor", "long", "AwsBatchExecutor"])
def test_an_executor_airstep_does_not_run_is_an_import_error_naming_it(name):
    with pytest.raises(DagDefinitionError, match=f"executor '{name}' is not one airstep runs"):
        _container(executor=name)


def test_executor_and_its_config_come_from_default_args_too():
    with DAG(
        "d",
        start_date=datetime(2026, 1, 1),
        schedule=None,
        default_args={
            "executor": "AwsEcsExecutor",
            "executor_config": {"overrides": {"cpu": "4096", "memory": "30720"}},
        },
    ) as dag:

        @task
        def big():
            return 1

        @task(executor="LocalExecutor", executor_config=None)
        def small():
            return 1

        big() >> small()
    model = DagModel.from_dag(dag)
    assert model.task_map["big"].container == ContainerPolicy(4096, 30720)
    assert model.task_map["small"].container is None
    assert DagModel.from_json(model.to_json()) == model  # the model round-trips its containers


@pytest.mark.parametrize(
    ("config", "size"),
    [
        ({"overrides": {"cpu": "512", "memory": "1024"}}, (512, 1024)),
        ({"overrides": {"containerOverrides": [{"name": "airflow-worker", "cpu": 256, "memory": 2048}]}}, (256, 2048)),
        ({"overrides": {"containerOverrides": [{"name": "airflow-worker", "memory": 512}]}}, (1024, 2048)),
        ({"overrides": {"containerOverrides": [{"cpu": 3000, "memory": 9000}]}}, (4096, 9216)),
        ({"overrides": {"cpu": 16384, "memory": 122880}}, (16384, 122880)),
    ],
)
def test_executor_config_sizes_the_fargate_task(config, size):
    assert _container(executor="AwsEcsExecutor", executor_config=config) == ContainerPolicy(*size)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"overrides": {"cpu": "256", "memory": "4096"}}, "memory 4096 MiB does not go with cpu 256"),
        ({"overrides": {"cpu": "256", "memory": "1536"}}, "(512, 1024, 2048)"),
        ({"overrides": {"containerOverrides": [{"memory": 200_000}]}}, "no Fargate task holds"),
        ({"overrides": {"cpu": "3000"}}, "cpu 3000 is not a Fargate task size"),
        ({"overrides": {"cpu": "1024", "memory": "3000"}}, "in steps of 1024"),
        ({"networkConfiguration": {}}, "only overrides' cpu and memory"),
        ({"overrides": {"taskRoleArn": "arn:x"}}, "may set cpu and memory only, not ['taskRoleArn']"),
        ({"overrides": {"containerOverrides": [{"environment": []}]}}, "not ['environment']"),
        ({"overrides": {"cpu": "lots"}}, "cpu must be a whole number"),
        ("big", "executor_config must be a dict"),
    ],
)
def test_executor_config_airstep_cannot_apply_is_refused(config, says):
    with pytest.raises(DagDefinitionError, match="executor_config") as raised:
        _container(executor="AwsEcsExecutor", executor_config=config)
    assert says in str(raised.value)


def test_another_executors_config_is_ignored_as_airflows_executors_ignore_it():
    assert _container(executor_config={"pod_override": object()}) is None
    assert _container(executor="CeleryExecutor", executor_config={"overrides": {"cpu": "512"}}) is None


def test_operators_that_run_no_task_code_cannot_ask_for_a_container():
    class Waits(BaseSensorOperator):
        def poke(self, context):
            return True

    with DAG("d", start_date=datetime(2026, 1, 1), schedule=None):
        with pytest.raises(DagDefinitionError, match="a sensor's pokes run on Lambda"):
            Waits(task_id="waits", executor="AwsEcsExecutor")
        from airstep.sdk.operators.amazon.sns import SnsPublishOperator

        with pytest.raises(DagDefinitionError, match="runs as a Step Functions service integration"):
            SnsPublishOperator(
                task_id="tell", target_arn="arn:aws:sns:us-east-1:1:t", message="m", executor="AwsEcsExecutor"
            )
