"""Authoring SDK: Airflow 3 names for defining DAGs. No I/O happens here."""
