"""Airflow DAG files, unmodified: the `airflow` import surface airstep answers (`surface`), the scope in
which it answers it (`imports`), and the migration report over a folder of DAG files (`report`)."""
