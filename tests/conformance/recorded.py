"""Airflow 3.3's recorded answers (airflow_outcomes.jsonl and airflow_files.jsonl, written by
record_airflow.py)."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.dag_specs import DagSpec

FIXTURE = Path(__file__).with_name("airflow_outcomes.jsonl")
RECORDS = [json.loads(line) for line in FIXTURE.read_text().splitlines()] if FIXTURE.exists() else []
SPECS = {r["spec"]["dag_id"]: DagSpec.from_dict(r["spec"]) for r in RECORDS}
AIRFLOW = {r["spec"]["dag_id"]: r["airflow"] for r in RECORDS}

AIRFLOW_FILES = Path(__file__).with_name("airflow_files")  # DAG files written for Airflow, run unmodified
FILES_FIXTURE = Path(__file__).with_name("airflow_files.jsonl")
FILE_RECORDS = [json.loads(line) for line in FILES_FIXTURE.read_text().splitlines()] if FILES_FIXTURE.exists() else []
