"""Environment variables the runtime reads. An explicit argument always beats the environment."""

TABLE_NAME_ENV = "AIRSTEP_TABLE_NAME"
LOG_LEVEL_ENV = "POWERTOOLS_LOG_LEVEL"
SERVICE_NAME = "airstep"
