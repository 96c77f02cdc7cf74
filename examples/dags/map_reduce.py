"""Dynamic task mapping: one `measure` instance per file the upstream task lists (known only when it
runs), each with its own retries, then a reduce that receives their results in map-index order."""

from datetime import datetime

from airstep import DAG, task

with DAG("map_reduce", schedule=None, start_date=datetime(2026, 1, 1), tags=["example"]):

    @task
    def list_files() -> list[str]:
        return [f"landing/2026-01-01/part-{i:03d}.csv" for i in range(12)]

    @task(retries=2)
    def measure(path: str, unit: str) -> int:
        return len(path) if unit == "chars" else len(path.split("/"))

    @task
    def report(sizes: list[int]) -> dict[str, int]:
        return {"files": len(sizes), "total": sum(sizes)}

    report(measure.partial(unit="chars").expand(path=list_files()))
