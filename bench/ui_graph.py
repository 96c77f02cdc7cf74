"""The UI's run page for a DAG of 1,000 tasks: how long the server takes to lay out and draw it
(graph and Gantt, SVG) and, when Debian's `chromium` is installed, how long a headless browser
takes to load and paint it (beside an empty page, whose cost is the browser's own start).

Run: python bench/ui_graph.py [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import layered_dag_source, median_seconds
from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep.runtime.store import TaskInstance
from airstep.states import TaskState
from airstep_ui import pages, pictures

STATES = [TaskState.SUCCESS] * 8 + [TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.SKIPPED, TaskState.RUNNING]


def run_page(model: DagModel, instances: list[TaskInstance]) -> str:
    data = {
        "dag_id": model.dag_id,
        "run_id": "manual__2026-12-05",
        "state": "failed",
        "run_type": "manual",
        "logical_date": None,
        "start": instances[0].start,
        "end": instances[-1].end,
        "duration": None,
        "triggered_by": "cli",
        "error": None,
        "tasks": [i.to_dict() for i in instances],
    }
    return pages.run_page(data, pictures.graph_svg(model, instances), pictures.gantt_svg(instances))


def browser_seconds(html: str, repeat: int) -> tuple[float, float] | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        page, blank = Path(folder) / "page.html", Path(folder) / "blank.html"
        page.write_text(html)
        blank.write_text("<!doctype html><p>blank</p>")

        def load(path: Path) -> None:
            subprocess.run(
                [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
                capture_output=True,
                check=True,
                timeout=60,
            )

        return median_seconds(lambda: load(page), repeat)[0], median_seconds(lambda: load(blank), repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.py"
        path.write_text(layered_dag_source("big", 1000))
        loaded = load_dag_file(str(path))
        model = DagModel.from_dag(next(iter(loaded.dags.values())))
    rng = random.Random(1)
    start = datetime(2026, 12, 5, tzinfo=UTC)
    instances = []
    for i, task in enumerate(model.tasks):
        began = start + timedelta(seconds=i * 0.5 + rng.random())
        ended = began + timedelta(seconds=rng.uniform(0.1, 5))
        instances.append(TaskInstance(task.task_id, -1, rng.choice(STATES), 1, began.isoformat(), ended.isoformat()))
    graph_s, _ = median_seconds(lambda: pictures.graph_svg(model, instances), args.repeat)
    gantt_s, _ = median_seconds(lambda: pictures.gantt_svg(instances), args.repeat)
    page_s, _ = median_seconds(lambda: run_page(model, instances), args.repeat)
    html = run_page(model, instances)
    print(f"run page of {len(model.tasks)} tasks ({len(html) / 1e6:.2f} MB of HTML), median of {args.repeat}:")
    print(f"  graph (layout + SVG): {graph_s * 1000:7.0f} ms")
    print(f"  Gantt (SVG):          {gantt_s * 1000:7.0f} ms")
    print(f"  whole page on server: {page_s * 1000:7.0f} ms")
    browser = browser_seconds(html, args.repeat)
    if browser is None:
        print("  browser: chromium is not installed (apt install chromium) - skipped")
        return
    loaded_s, blank_s = browser
    print(f"  headless chromium, load and paint: {loaded_s * 1000:.0f} ms (an empty page: {blank_s * 1000:.0f} ms)")
    total = page_s + loaded_s - blank_s
    print(f"  page ready in about {total * 1000:.0f} ms: {'within' if total < 2 else 'OVER'} the 2 s the UI promises")


if __name__ == "__main__":
    main()
