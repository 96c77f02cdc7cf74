"""A TaskFlow ETL: values flow from task to task through return values."""

from datetime import datetime

from airstep import dag, task


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["example"], params={"factor": 10})
def etl_taskflow():
    @task
    def extract() -> list[dict]:
        return [{"id": 1, "amount": 3}, {"id": 2, "amount": 4}, {"id": 3, "amount": 5}]

    @task
    def transform(rows: list[dict], params=None) -> dict:
        total = sum(row["amount"] for row in rows)
        return {"count": len(rows), "total": total * params["factor"]}

    @task
    def load(summary: dict, ds=None) -> str:
        line = f"{ds}: {summary['count']} rows, total {summary['total']}"
        print(line)
        return line

    load(transform(extract()))


etl_taskflow()
