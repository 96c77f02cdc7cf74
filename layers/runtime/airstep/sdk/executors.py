"""Which executor runs a task: Airflow 3's `executor=` on a task (or in `default_args`).

airstep has two: Lambda (the executor function, up to 15 minutes a try), and the amazon provider's
ECS executor, which airstep runs as one ECS Fargate task per try (no time limit but the task's
execution_timeout). A task names an executor as Airflow lets it: by module path, by class name, or
by an alias that Airflow's `[core] executor` setting defines (`AIRFLOW__CORE__EXECUTOR`, e.g.
`LocalExecutor,long:airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor`; its
first executor is the default of tasks that name none). Airflow's worker executors (Local, Celery,
Sequential, the provider's Lambda executor) run a task as airstep's Lambda does; any other executor
is an import error naming it.

The ECS executor's `executor_config` is, as in Airflow, the keyword arguments of its RunTask call:
airstep takes the task's size from it (`{"overrides": {"cpu": "2048", "memory": "4096"}}`, or the
smallest Fargate size that holds a container override's `cpu`/`memory`) and refuses the rest.
Another executor's `executor_config` is ignored, as Airflow's executors ignore each other's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airstep.containers import ContainerPolicy
from airstep.errors import DagDefinitionError, SourceLocation

EXECUTOR_SETTING_ENV = "AIRFLOW__CORE__EXECUTOR"
ECS_EXECUTOR = "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"
WORKER_EXECUTORS = (  # Airflow's executors that run a task's code in a worker: a Lambda here
    "airflow.executors.local_executor.LocalExecutor",
    "airflow.executors.sequential_executor.SequentialExecutor",
    "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    "airflow.providers.amazon.aws.executors.aws_lambda.lambda_executor.AwsLambdaExecutor",
)
DEFAULT_CPU, DEFAULT_MEMORY = 1024, 2048  # the runner task definition's (template.yaml)
# Fargate's task sizes: CPU units -> the memory sizes (MiB) it may have
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


def _configured() -> list[tuple[str | None, str]]:
    """Airflow's `[core] executor` setting, the executors every team may use: (alias, name) in order,
    the first the default (a team's own executors, after a `;`, are Airflow's multi-team option)."""
    setting = os.environ.get(EXECUTOR_SETTING_ENV, "").split(";")[0]
    entries = []
    for entry in setting.strip("=").split(","):
        alias, _, name = entry.strip().rpartition(":")
        if name:
            entries.append((alias or None, name))
    return entries


def _known() -> dict[str, str]:
    """Each name a task may give -> the module path of the executor it names."""
    names: dict[str, str] = {}
    for path in (ECS_EXECUTOR, *WORKER_EXECUTORS):
        names[path] = path
        names[path.rsplit(".", 1)[1]] = path
    for alias, name in _configured():
        if alias and name in names:  # (an alias of an executor airstep does not run stays unknown)
            names[alias] = names[name]
    return names


def container_for(executor: Any, executor_config: Any, location: SourceLocation) -> ContainerPolicy | None:
    """The ECS Fargate task a task's tries run in, or None for Lambda; what cannot run is an import
    error at `location`. A task that names no executor gets the setting's first (Airflow's default)."""
    defaulted = executor is None
    if defaulted:
        configured = _configured()
        if not configured:
            return None
        executor = configured[0][1]
    elif not isinstance(executor, str):
        _refuse(f"executor must be an executor's name, got {type(executor).__name__}", location)
    path = _known().get(executor)
    if path is None and not defaulted:  # (a default airstep does not run leaves the task on Lambda)
        _refuse(
            f"executor {executor!r} is not one airstep runs: a task runs on Lambda (LocalExecutor, CeleryExecutor, "
            f"AwsLambdaExecutor) or on ECS Fargate ({ECS_EXECUTOR}, AwsEcsExecutor, or an alias of it in "
            f"{EXECUTOR_SETTING_ENV})",
            location,
        )
    if path != ECS_EXECUTOR:  # (its executor_config is another executor's, which Airflow's ignore too)
        return None
    return _sized(executor_config, location)


def _sized(config: Any, location: SourceLocation) -> ContainerPolicy:
    """The Fargate task's CPU and memory from the ECS executor's `executor_config` (RunTask's kwargs):
    the task's size as given (`overrides.cpu`/`memory`), or the smallest that holds what its
    container asks for (`overrides.containerOverrides[0].cpu`/`memory`)."""
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
        ("overrides.containerOverrides[0]", set(container) - {"cpu", "memory", "memoryReservation"}),
    ):
        if keys:
            _refuse(f"executor_config: {where} may set cpu and memory only, not {sorted(keys)}", location)
    if "cpu" not in overrides and "memory" not in overrides:
        wanted = (
            _units("cpu", container.get("cpu", 0), location),
            _units("memory", container.get("memory", container.get("memoryReservation", 0)), location),
        )
        return _holding(*wanted, location) if any(wanted) else ContainerPolicy(DEFAULT_CPU, DEFAULT_MEMORY)
    cpu = _units("cpu", overrides.get("cpu", DEFAULT_CPU), location)
    memory = _units("memory", overrides.get("memory", DEFAULT_MEMORY), location)
    if cpu not in FARGATE_SIZES:
        sizes = ", ".join(map(str, FARGATE_SIZES))
        _refuse(f"executor_config: cpu {cpu} is not a Fargate task size ({sizes})", location)
    if memory not in FARGATE_SIZES[cpu]:
        allowed = FARGATE_SIZES[cpu]
        shown = (
            ", ".join(map(str, allowed))
            if len(allowed) <= 4
            else f"{allowed[0]} to {allowed[-1]} in steps of {allowed[1] - allowed[0]}"
        )
        _refuse(f"executor_config: memory {memory} MiB does not go with cpu {cpu} on Fargate ({shown})", location)
    return ContainerPolicy(cpu, memory)


def _holding(cpu: int, memory: int, location: SourceLocation) -> ContainerPolicy:
    """The smallest Fargate task size with at least `cpu` units and `memory` MiB (the default's
    CPU at least, as the task definition has it)."""
    for units, memories in FARGATE_SIZES.items():
        if units < max(cpu, DEFAULT_CPU if not cpu else 0):
            continue
        fitting = [m for m in memories if m >= memory]
        if fitting:
            return ContainerPolicy(units, fitting[0])
    _refuse(f"executor_config: no Fargate task holds a container of cpu {cpu} and memory {memory} MiB", location)
    raise AssertionError  # (unreachable: _refuse raises)


def _units(name: str, value: Any, location: SourceLocation) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit():
        _refuse(f"executor_config: {name} must be a whole number, got {value!r}", location)
    return int(str(value).strip())


def _refuse(message: str, location: SourceLocation) -> None:
    raise DagDefinitionError(message, location)
