"""Environment variables the runtime reads. An explicit argument always beats the environment."""

TABLE_NAME_ENV = "AIRSTEP_TABLE_NAME"
SERVICE_NAME = "airstep"
RETENTION_DAYS_ENV = "AIRSTEP_RETENTION_DAYS"
EXECUTOR_FUNCTION_ENV = "AIRSTEP_EXECUTOR_FUNCTION"
EXECUTOR_MEMORY_ENV = "AIRSTEP_EXECUTOR_MEMORY_MB"  # its memory, for the usage of a try whose executor crashed
# template.yaml's memory sizes: the executor's (TaskMemorySize's default) and the runner's. A local run's usage is
# metered at them; a deployed function reports its own.
DEFAULT_EXECUTOR_MEMORY_MB, RUNNER_MEMORY_MB = 1024, 256
XCOM_BUCKET_ENV = "AIRSTEP_XCOM_BUCKET"
# The function that starts asset-triggered runs (start-run); unset locally, where the CLI runs them
ASSET_RUNS_FUNCTION_ENV = "AIRSTEP_ASSET_RUNS_FUNCTION"
# The same function, asked by the task runner to start a TriggerDagRunOperator's run (set locally too)
START_RUN_FUNCTION_ENV = "AIRSTEP_START_RUN_FUNCTION"
MAX_MAP_LENGTH_ENV = "AIRSTEP_MAX_MAP_LENGTH"
DEFAULT_MAX_MAP_LENGTH = 10_000  # Airflow's [core] max_map_length is 1,024; the stack's MaxMapLength
