"""Airflow's import paths that airstep answers, and the airstep object behind each name.

A DAG file written for Airflow 3 (or Airflow 2, as MWAA users have them) imports these paths; while
airstep loads the file or runs its tasks, they resolve to the objects listed here (`imports.py`).
Anything else under `airflow` is an import error naming what is not supported.
"""

from __future__ import annotations

from collections.abc import Iterable

from airstep.compat.versions import VERSION_FLAGS

Names = dict[str, str]  # name in the Airflow module -> "airstep.module:attribute"

_DAG = {"DAG": "airstep.sdk.dag:DAG", "dag": "airstep.sdk.dag:dag"}
_TASK = {"task": "airstep.sdk.taskflow:task"}
_SETUP_TEARDOWN = {"setup": "airstep.sdk.taskflow:setup", "teardown": "airstep.sdk.taskflow:teardown"}
_EXCEPTIONS = {
    "AirflowException": "airstep.errors:AirflowException",
    "AirflowSkipException": "airstep.errors:AirflowSkipException",
    "AirflowFailException": "airstep.errors:AirflowFailException",
    "AirflowTaskTimeout": "airstep.errors:AirflowTaskTimeout",
    "AirflowNotFoundException": "airstep.connections:AirflowNotFoundException",
    "ParamValidationError": "airstep.errors:ParamValidationError",
    "AirflowSensorTimeout": "airstep.sdk.sensors:AirflowSensorTimeout",
}
_PARAM = {"Param": "airstep.sdk.param:Param"}
_DEPENDENCIES = {
    "chain": "airstep.sdk.dependencies:chain",
    "chain_linear": "airstep.sdk.dependencies:chain_linear",
    "cross_downstream": "airstep.sdk.dependencies:cross_downstream",
}
_BASE_OPERATOR = {"BaseOperator": "airstep.sdk.baseoperator:BaseOperator"}
_VARIABLE = {"Variable": "airstep.connections:Variable"}
_CONNECTION = {"Connection": "airstep.connections:Connection"}
_HOOK = {"BaseHook": "airstep.connections:BaseHook"}
_TRIGGER_RULE = {"TriggerRule": "airstep.trigger_rule:TriggerRule"}
_LABEL = {"Label": "airstep.sdk.dependencies:Label"}
_CONTEXT = {
    "Context": "airstep.runtime.context:Context",
    "get_current_context": "airstep.runtime.context:get_current_context",
}
_XCOM_ARG = {"XComArg": "airstep.sdk.xcom_arg:XComArg"}
_TASK_GROUP = {"TaskGroup": "airstep.sdk.taskgroup:TaskGroup", "task_group": "airstep.sdk.taskgroup:task_group"}
_TRIGGER_TIMETABLES = {
    "CronTriggerTimetable": "airstep.timetables:CronTriggerTimetable",
    "DeltaTriggerTimetable": "airstep.timetables:DeltaTriggerTimetable",
}
_INTERVAL_TIMETABLES = {
    "CronDataIntervalTimetable": "airstep.timetables:CronDataIntervalTimetable",
    "DeltaDataIntervalTimetable": "airstep.timetables:DeltaDataIntervalTimetable",
}
_TIMETABLES = {**_TRIGGER_TIMETABLES, **_INTERVAL_TIMETABLES}
_DEADLINES = {
    name: f"airstep.sdk.deadline:{name}"
    for name in ("DeadlineAlert", "DeadlineReference", "BaseDeadlineReference", "AsyncCallback", "SyncCallback")
}
_CALLBACKS = {name: f"airstep.sdk.deadline:{name}" for name in ("AsyncCallback", "SyncCallback", "Callback")}
_ASSETS = {name: f"airstep.sdk.assets:{name}" for name in ("Asset", "AssetAll", "AssetAny", "AssetWatcher")}
_BRANCH = {
    "BranchPythonOperator": "airstep.sdk.operators.branch:BranchPythonOperator",
    "ShortCircuitOperator": "airstep.sdk.operators.branch:ShortCircuitOperator",
}
_BASE_BRANCH = {
    "BaseBranchOperator": "airstep.sdk.operators.branch:BaseBranchOperator",
    "BranchMixIn": "airstep.sdk.operators.branch:BranchMixIn",
}
_PYTHON = {"PythonOperator": "airstep.sdk.operators:PythonOperator", **_BRANCH, **_CONTEXT}
_BASH = {"BashOperator": "airstep.sdk.operators:BashOperator"}
_EMPTY = {"EmptyOperator": "airstep.sdk.operators:EmptyOperator"}
_LATEST_ONLY = {"LatestOnlyOperator": "airstep.sdk.operators.latest_only:LatestOnlyOperator"}
_TRIGGER_DAGRUN = {
    name: f"airstep.sdk.operators.trigger_dagrun:{name}"
    for name in ("TriggerDagRunOperator", "DagIsPaused", "XCOM_RUN_ID", "XCOM_LOGICAL_DATE_ISO")
}
_WEEKDAY_BRANCH = {"BranchDayOfWeekOperator": "airstep.sdk.operators.weekday:BranchDayOfWeekOperator"}
_DATETIME_BRANCH = {
    "BranchDateTimeOperator": "airstep.sdk.operators.datetime:BranchDateTimeOperator",
    "target_times_as_dates": "airstep.sdk.operators.datetime:target_times_as_dates",
}
_WEEKDAY = {"WeekDay": "airstep.sdk.weekday:WeekDay"}
_BASE_SENSOR = {
    "BaseSensorOperator": "airstep.sdk.sensors:BaseSensorOperator",
    "PokeReturnValue": "airstep.sdk.sensors:PokeReturnValue",
}
_PYTHON_SENSOR = {"PythonSensor": "airstep.sdk.sensors:PythonSensor"}
_FILE_SENSOR = {"FileSensor": "airstep.sdk.sensors:FileSensor"}
_BASH_SENSOR = {"BashSensor": "airstep.sdk.sensors:BashSensor"}
_EXTERNAL_TASK_SENSOR = {
    name: f"airstep.sdk.external_task:{name}"
    for name in ("ExternalTaskSensor", "ExternalDagFailedError", "ExternalTaskFailedError", "DuplicateStateError")
}
_TIME_SENSORS = {
    "date_time": {"DateTimeSensor": "airstep.sdk.time_sensors:DateTimeSensor"},
    "time_delta": {"TimeDeltaSensor": "airstep.sdk.time_sensors:TimeDeltaSensor"},
    "time": {"TimeSensor": "airstep.sdk.time_sensors:TimeSensor"},
    "weekday": {"DayOfWeekSensor": "airstep.sdk.time_sensors:DayOfWeekSensor"},
}

_AMAZON = "airstep.sdk.operators.amazon"
_AMAZON_OPERATORS = {
    "athena": {"AthenaOperator": f"{_AMAZON}.athena:AthenaOperator"},
    "batch": {"BatchOperator": f"{_AMAZON}.batch:BatchOperator"},
    "ecs": {"EcsRunTaskOperator": f"{_AMAZON}.ecs:EcsRunTaskOperator"},
    "emr": {
        "EmrServerlessStartJobOperator": f"{_AMAZON}.emr:EmrServerlessStartJobOperator",
        **{
            name: f"{_AMAZON}.emr_clusters:{name}"
            for name in ("EmrCreateJobFlowOperator", "EmrAddStepsOperator", "EmrTerminateJobFlowOperator")
        },
    },
    "glue": {"GlueJobOperator": f"{_AMAZON}.glue:GlueJobOperator"},
    "glue_crawler": {
        name: f"{_AMAZON}.glue_crawler:{name}" for name in ("GlueCrawlerOperator", "GlueCrawlerRunOperator")
    },
    "lambda_function": {"LambdaInvokeFunctionOperator": f"{_AMAZON}.lambda_function:LambdaInvokeFunctionOperator"},
    "redshift_data": {"RedshiftDataOperator": f"{_AMAZON}.redshift_data:RedshiftDataOperator"},
    "s3": {
        name: f"{_AMAZON}.s3:{name}"
        for name in ("S3CreateObjectOperator", "S3CopyObjectOperator", "S3DeleteObjectsOperator")
    },
    "sns": {"SnsPublishOperator": f"{_AMAZON}.sns:SnsPublishOperator"},
    "sqs": {"SqsPublishOperator": f"{_AMAZON}.sqs:SqsPublishOperator"},
    "step_function": {
        "StepFunctionStartExecutionOperator": f"{_AMAZON}.step_function:StepFunctionStartExecutionOperator"
    },
}

_AMAZON_SENSORS = {
    "s3": {"S3KeySensor": f"{_AMAZON}.sensors:S3KeySensor"},
    "glue": {"GlueJobSensor": f"{_AMAZON}.sensors:GlueJobSensor"},
    "athena": {"AthenaSensor": f"{_AMAZON}.sensors:AthenaSensor"},
    "batch": {"BatchSensor": f"{_AMAZON}.sensors:BatchSensor"},
    "emr": {"EmrStepSensor": f"{_AMAZON}.sensors:EmrStepSensor"},
}

SDK: Names = {  # Airflow 3's authoring interface
    **_DAG,
    **_TASK,
    **_DEPENDENCIES,
    **_BASE_OPERATOR,
    **_VARIABLE,
    **_CONNECTION,
    **_HOOK,
    **_TRIGGER_RULE,
    **_LABEL,
    **_CONTEXT,
    **_XCOM_ARG,
    **_TASK_GROUP,
    **_TIMETABLES,
    **_BASE_BRANCH,
    **_SETUP_TEARDOWN,
    **_PARAM,
    **_BASE_SENSOR,
    **_ASSETS,
    **_DEADLINES,
    "SkipMixin": "airstep.sdk.operators.branch:SkipMixin",
}
# The names airflow.providers.common.compat.sdk exports (it finds each in airflow.sdk or Airflow 2's module)
_COMMON_COMPAT_SDK = frozenset(
    """DAG Asset AssetAlias AssetAll AssetAny BaseHook BaseNotifier BaseOperator BaseOperatorLink
    BaseSensorOperator Connection Context DagRunState EdgeModifier Label Metadata ObjectStoragePath Param
    PokeReturnValue TaskGroup TaskInstanceState TriggerRule Variable WeightRule XComArg chain chain_linear
    cross_downstream dag get_current_context get_parsing_context setup task task_group teardown
    AirflowConfigException AirflowException AirflowFailException AirflowNotFoundException AirflowSensorTimeout
    AirflowSkipException AirflowTaskTimeout ParamValidationError TaskDeferred XComNotFound
    DagRunTriggerException DownstreamTasksSkipped""".split()
)

SURFACE: dict[str, Names] = {
    "airflow.sdk": SDK,
    "airflow.sdk.definitions.deadline": {
        **_DEADLINES,
        **{
            name: f"airstep.sdk.deadline:{name}"
            for name in (
                "DagRunLogicalDateDeadline",
                "DagRunQueuedAtDeadline",
                "FixedDatetimeDeadline",
                "AverageRuntimeDeadline",
            )
        },
    },
    "airflow.sdk.definitions.callback": _CALLBACKS,
    "airflow.sdk.definitions.asset": {**_ASSETS, "BaseAsset": "airstep.sdk.assets:BaseAsset"},
    "airflow.sdk.bases.sensor": _BASE_SENSOR,
    "airflow.providers.common.messaging.triggers.msg_queue": {
        "MessageQueueTrigger": "airstep.sdk.triggers:MessageQueueTrigger"
    },
    "airflow.triggers.base": {"BaseEventTrigger": "airstep.sdk.triggers:BaseEventTrigger"},
    "airflow.providers.standard.sensors.python": _PYTHON_SENSOR,
    "airflow.providers.standard.sensors.filesystem": _FILE_SENSOR,
    "airflow.providers.standard.sensors.bash": _BASH_SENSOR,
    "airflow.providers.standard.sensors.external_task": _EXTERNAL_TASK_SENSOR,
    **{f"airflow.providers.standard.sensors.{module}": names for module, names in _TIME_SENSORS.items()},
    "airflow.sdk.definitions.param": _PARAM,
    "airflow.sdk.definitions.decorators.setup_teardown": {
        "setup_task": _SETUP_TEARDOWN["setup"],
        "teardown_task": _SETUP_TEARDOWN["teardown"],
    },
    "airflow.sdk.exceptions": _EXCEPTIONS,
    "airflow.sdk.bases.operator": {**_BASE_OPERATOR, **_DEPENDENCIES},
    "airflow.sdk.bases.hook": _HOOK,
    "airflow.sdk.definitions.dag": {"DAG": _DAG["DAG"]},
    "airflow.sdk.definitions.context": _CONTEXT,
    "airflow.sdk.definitions.edges": _LABEL,
    "airflow.sdk.definitions.taskgroup": {"TaskGroup": _TASK_GROUP["TaskGroup"]},
    "airflow.sdk.definitions.decorators.task_group": {"task_group": _TASK_GROUP["task_group"]},
    "airflow.providers.standard.operators.python": _PYTHON,
    "airflow.providers.standard.operators.bash": _BASH,
    "airflow.providers.standard.operators.empty": _EMPTY,
    "airflow.providers.standard.operators.branch": _BASE_BRANCH,
    "airflow.providers.standard.operators.latest_only": _LATEST_ONLY,
    "airflow.providers.standard.operators.trigger_dagrun": _TRIGGER_DAGRUN,
    "airflow.providers.standard.operators.weekday": _WEEKDAY_BRANCH,
    "airflow.providers.standard.operators.datetime": _DATETIME_BRANCH,
    "airflow.providers.standard.utils.weekday": _WEEKDAY,
    "airflow.providers.standard.utils.skipmixin": {"SkipMixin": "airstep.sdk.operators.branch:SkipMixin"},
    **{f"airflow.providers.amazon.aws.operators.{module}": names for module, names in _AMAZON_OPERATORS.items()},
    **{f"airflow.providers.amazon.aws.sensors.{module}": names for module, names in _AMAZON_SENSORS.items()},
    "airflow.providers.amazon.aws.utils.waiter": {"WaitPolicy": f"{_AMAZON}.emr_clusters:WaitPolicy"},
    "airflow.providers.common.compat.sdk": {
        name: where
        for name, where in {**SDK, **_EXCEPTIONS}.items()
        if name in _COMMON_COMPAT_SDK  # (what that module re-exports: airflow.sdk's names, its exceptions)
    },
    "airflow.providers.amazon.version_compat": {
        **{name: f"airstep.compat.versions:{name}" for name in VERSION_FLAGS},
        **{name: f"airstep.sdk.param:{name}" for name in ("NOTSET", "ArgNotSet", "is_arg_set")},
    },
    # Airflow 2's paths, which Airflow 3 still accepts or which MWAA DAG files use.
    "airflow": {"DAG": _DAG["DAG"]},
    "airflow.decorators": {**_DAG, **_TASK, **_SETUP_TEARDOWN, "task_group": _TASK_GROUP["task_group"]},
    "airflow.models": {"DAG": _DAG["DAG"], **_BASE_OPERATOR, **_VARIABLE, **_CONNECTION, **_PARAM},
    "airflow.models.param": _PARAM,
    "airflow.models.dag": {"DAG": _DAG["DAG"]},
    "airflow.models.baseoperator": {**_BASE_OPERATOR, **_DEPENDENCIES},
    "airflow.models.variable": _VARIABLE,
    "airflow.models.connection": _CONNECTION,
    "airflow.sensors.base": _BASE_SENSOR,
    "airflow.sensors.python": _PYTHON_SENSOR,
    "airflow.sensors.filesystem": _FILE_SENSOR,
    "airflow.sensors.bash": _BASH_SENSOR,
    "airflow.sensors.external_task": _EXTERNAL_TASK_SENSOR,
    **{
        f"airflow.sensors.{'time_sensor' if module == 'time' else module}": names
        for module, names in _TIME_SENSORS.items()
    },
    "airflow.operators.python": _PYTHON,
    "airflow.operators.bash": _BASH,
    "airflow.operators.empty": _EMPTY,
    "airflow.operators.branch": _BASE_BRANCH,
    "airflow.operators.latest_only": _LATEST_ONLY,
    "airflow.operators.trigger_dagrun": _TRIGGER_DAGRUN,
    "airflow.operators.weekday": _WEEKDAY_BRANCH,
    "airflow.operators.datetime": _DATETIME_BRANCH,
    "airflow.utils.weekday": _WEEKDAY,
    "airflow.hooks.base": _HOOK,
    "airflow.exceptions": _EXCEPTIONS,
    "airflow.utils.trigger_rule": _TRIGGER_RULE,
    "airflow.utils.edgemodifier": _LABEL,
    "airflow.utils.task_group": {"TaskGroup": _TASK_GROUP["TaskGroup"]},
    "airflow.timetables.trigger": _TRIGGER_TIMETABLES,
    "airflow.timetables.interval": _INTERVAL_TIMETABLES,
}


def _packages(modules: Iterable[str]) -> frozenset[str]:
    """Every proper prefix of a listed module: the packages a file may import on the way."""
    return frozenset(".".join(parts[:i]) for parts in (m.split(".") for m in modules) for i in range(1, len(parts)))


PACKAGES = _packages(SURFACE)


def is_airflow_module(name: str) -> bool:
    """Whether `name` is under Airflow's top-level package."""
    return name == "airflow" or name.startswith("airflow.")


def is_known_module(name: str) -> bool:
    """Whether airstep answers imports of module `name`."""
    return name in SURFACE or name in PACKAGES


def target(module: str, name: str) -> str | None:
    """ "airstep.module:attribute" for `from module import name`, or None when airstep lacks it."""
    return SURFACE.get(module, {}).get(name)


def not_supported(what: str) -> str:
    """The message for an Airflow name or module airstep does not implement."""
    return f"`{what}` is not supported by airstep"
