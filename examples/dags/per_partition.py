"""A mapped task group: one extract -> validate -> load chain per partition the upstream task lists
(known only when it runs), each partition's tasks decided at its own map index (a partition that
fails validation is not loaded; the others are), then a summary over every load in map-index order.
At most four of its task instances run at once (max_active_tasks), however many partitions there are."""

from datetime import datetime

from airstep import DAG, task, task_group

with DAG("per_partition", schedule=None, start_date=datetime(2026, 1, 1), max_active_tasks=4, tags=["example"]):

    @task
    def partitions() -> list[str]:
        return ["2026-01-01", "2026-01-02", "2026-01-03"]

    @task
    def extract(day: str, source: str) -> dict[str, object]:
        return {"day": day, "rows": 0 if day.endswith("02") else 100, "source": source}

    @task
    def validate(batch: dict[str, object]) -> dict[str, object]:
        if batch["rows"] == 0:
            raise ValueError(f"no rows for {batch['day']}")
        return batch

    @task
    def load(batch: dict[str, object]) -> str:
        return f"loaded {batch['rows']} rows for {batch['day']}"

    @task_group
    def per_day(day: str, source: str) -> object:
        return load(validate(extract(day, source)))

    @task(trigger_rule="all_done")
    def summary(loaded: list[str | None]) -> list[str | None]:
        return list(loaded)

    summary(per_day.partial(source="s3://landing").expand(day=partitions()))
