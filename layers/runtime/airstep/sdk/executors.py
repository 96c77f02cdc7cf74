"""Which executor runs a task: Airflow 3's `executor=` on a task (or in `default_args`).

airstep has two: Lambda (the executor function, up to 15 minutes a try), and the amazon provider's
ECS executor, which airstep runs as one ECS Fargate task per try (no time limit but the task's
execution_timeout). A task names an executor as Airflow lets it: by module path, by class name, or
by an alias that Airflow's `[core] executor` setting defines (`AIRFLOW__CORE__EXECUTOR`, e.g.
`LocalExecutor,long:airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor`).
Airflow's worker executors (Local, Celery, Sequential, the provider's Lambda executor) run a task as
airstep's Lambda does; any other executor is an import error naming it.

The ECS executor's `executor_config` is, as in Airflow, the keyword arguments of its RunTask call:
airstep takes the task's CPU and memory from it (`{"overrides": {"cpu": "2048", "memory": "4096"}}`,
or a container override's `cpu`/`memory`) and refuses the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airstep.errors import DagDefinitionError, SourceLocation
from airstep.model import ContainerPolicy

EXECUTOR_SETTING_ENV = "AIRFLOW__CORE__EXECUTOR"
ECS_EXECUTOR = "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"
WORKER_EXECUTORS = (  # Airflow's executors that run a task's code in a worker: a Lambda here
    "airflow.executors.local_executor.LocalExecutor",
    "airflow.executors.sequential_executor.SequentialExecutor",
    "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    "airflow.providers.amazon.aws.executors.aws_lambda.lambda_executor.AwsLambdaExecutor",
)
DEFAULT_CPU, DEFAULT_MEMORY = 1024, 2048  # the runner task definition's (template.yaml)
# Fargate's task sizes: CPU units -> the memory (MiB) it may have: (least, most, step)
FARGATE_SIZES = {
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}


def _known() -> dict[str, str]:
    """Each name a task may give -> the module path of the executor it names."""
    names: dict[str, str] = {}
    for path in (ECS_EXECUTOR, *WORKER_EXECUTORS):
        names[path] = path
        names[path.rsplit(".", 1)[1]] = path
    for entry in os.environ.get(EXECUTOR_SETTING_ENV, "").split(","):
        alias, _, path = entry.strip().rpartition(":")
        if alias and path in names:  # (an alias of an executor airstep does not run stays unknown)
            names[alias.split(":")[-1]] = names[path]  # (a team's entry is `team:alias:path`)
    return names


def container_for(executor: Any, executor_config: Any, location: SourceLocation) -> ContainerPolicy | None:
    """The ECS Fargate task a task's tries run in, or None for Lambda; what cannot run is an import
    error at `location`."""
    if executor is None:
        if executor_config:
            _refuse("executor_config applies only to the ECS executor (executor=" + repr(ECS_EXECUTOR) + ")", location)
        return None
    if not isinstance(executor, str):
        _refuse(f"executor must be an executor's name, got {type(executor).__name__}", location)
    path = _known().get(executor)
    if path is None:
        _refuse(
            f"executor {executor!r} is not one airstep runs: a task runs on Lambda (LocalExecutor, CeleryExecutor, "
            f"AwsLambdaExecutor) or on ECS Fargate ({ECS_EXECUTOR}, AwsEcsExecutor, or an alias of it in "
            f"{EXECUTOR_SETTING_ENV})",
            location,
        )
    if path != ECS_EXECUTOR:
        if executor_config:
            _refuse(f"executor_config applies only to the ECS executor, not {executor!r}", location)
        return None
    return _sized(executor_config, location)


def _sized(config: Any, location: SourceLocation) -> ContainerPolicy:
    """The Fargate task's CPU and memory from the ECS executor's `executor_config` (RunTask's kwargs)."""
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        _refuse(f"executor_config must be a dict, got {type(config).__name__}", location)
    overrides = config.get("overrides", {})
    extra = sorted(set(config) - {"overrides"})
    if extra or not isinstance(overrides, Mapping):
        not_taken = extra or "overrides"
        _refuse(f"executor_config: only overrides' cpu and memory are taken by airstep, not {not_taken}", location)
    containers = overrides.get("containerOverrides", [])
    if not isinstance(containers, list) or len(containers) > 1 or not all(isinstance(c, Mapping) for c in containers):
        _refuse("executor_config: overrides.containerOverrides must be a list of one container's overrides", location)
    container = dict(containers[0]) if containers else {}
    container.pop("name", None)
    for where, keys in (
        ("overrides", set(overrides) - {"cpu", "memory", "containerOverrides"}),
        (
            "overrides.containerOverrides[0]",
            set(container) - {"cpu", "memory"},
        ),
    ):
        if keys:
            _refuse(f"executor_config: {where} may set cpu and memory only, not {sorted(keys)}", location)
    cpu = _units("cpu", overrides.get("cpu", container.get("cpu", DEFAULT_CPU)), location)
    memory = _units("memory", overrides.get("memory", container.get("memory", DEFAULT_MEMORY)), location)
    if cpu not in FARGATE_SIZES:
        sizes = ", ".join(map(str, FARGATE_SIZES))
        _refuse(f"executor_config: cpu {cpu} is not a Fargate task size ({sizes})", location)
    least, most, step = FARGATE_SIZES[cpu]
    if not (least <= memory <= most and (memory - least) % step == 0):
        _refuse(
            f"executor_config: memory {memory} MiB does not go with cpu {cpu} on Fargate "
            f"({least} to {most} MiB in steps of {step})",
            location,
        )
    return ContainerPolicy(cpu, memory)


def _units(name: str, value: Any, location: SourceLocation) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit():
        _refuse(f"executor_config: {name} must be a whole number, got {value!r}", location)
    return int(str(value).strip())


def _refuse(message: str, location: SourceLocation) -> None:
    raise DagDefinitionError(message, location)
