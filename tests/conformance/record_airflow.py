"""Record Airflow 3.3's answers for the conformance suite's DAGs: the fixture the tests compare with.

    AIRFLOW_HOME=/tmp/airflow-home python tests/conformance/record_airflow.py \\
        --airflow-python /tmp/airflow-venv/bin/python [--count 520] [--seed 13] [--files]

Runs with this project's Python (it generates the DAGs) and calls ../shared/anchors/airflow/oracle.py
with the Python of a virtualenv that has apache-airflow==3.3.* (its README shows the set-up). Each
DAG is rendered for Airflow, run with dag.test(), and its run state and every task's state and try
number are written to airflow_outcomes.jsonl beside this file. With --files, the DAG files written for
Airflow in airflow_files/ are run instead, as they are, into airflow_files.jsonl. Run it again only
when the generator or those files change; CI never installs Airflow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1] / "compiler")]

from conformance.dag_specs import NAMED, DagSpec, dumps, unambiguous_specs  # noqa: E402
from conformance.recorded import AIRFLOW_FILES, FILES_FIXTURE, FIXTURE  # noqa: E402

ORACLE = HERE.parents[2] / "shared" / "anchors" / "airflow" / "oracle.py"
CHUNK = 20  # DAG files per dag.test() process: each test re-syncs its whole folder


def airflow_outcomes(python: str, specs: list[DagSpec]) -> dict[str, dict]:
    """Airflow's answer per dag_id."""
    answers: dict[str, dict] = {}
    for first in range(0, len(specs), CHUNK):
        chunk = specs[first : first + CHUNK]
        with tempfile.TemporaryDirectory(prefix="airstep-conformance-") as folder:
            files = []
            for spec in chunk:
                path = Path(folder) / f"{spec.dag_id}.py"
                path.write_text(spec.render("airflow"))
                files.append(str(path))
            done = subprocess.run(
                [python, str(ORACLE), *files], capture_output=True, text=True, check=False, timeout=1800
            )
        for line in done.stdout.splitlines():
            answer = json.loads(line)
            if "import_error" in answer:
                raise SystemExit(f"Airflow could not import {answer['file']}: {answer['import_error']}")
            answers[answer["dag_id"]] = _answer(answer)
        missing = [s.dag_id for s in chunk if s.dag_id not in answers]
        if missing:
            raise SystemExit(f"no answer from Airflow for {missing}:\n{done.stderr[-3000:]}")
        print(f"{len(answers)}/{len(specs)} DAGs recorded", file=sys.stderr, flush=True)
    return answers


def record_files(python: str) -> None:
    """airflow_files/*.py, as they are: one record per DAG, with its edges and return values."""
    files = sorted(AIRFLOW_FILES.glob("*.py"))
    done = subprocess.run(
        [python, str(ORACLE), *map(str, files), "--xcom"], capture_output=True, text=True, check=False
    )
    upstream = airflow_upstream(python, files)
    records = []
    for line in done.stdout.splitlines():
        answer = json.loads(line)
        if "import_error" in answer:
            raise SystemExit(f"Airflow could not import {answer['file']}: {answer['import_error']}")
        file = Path(answer["file"]).name
        records.append(
            {
                "file": file,
                "dag_id": answer["dag_id"],
                "airflow": _answer(answer),
                "return_values": answer.get("return_values", {}),
                "upstream": upstream[answer["dag_id"]],
            }
        )
    missing = {f.name for f in files} - {r["file"] for r in records}
    if missing:
        raise SystemExit(f"no answer from Airflow for {sorted(missing)}:\n{done.stderr[-3000:]}")
    FILES_FIXTURE.write_text(dumps(records))
    print(f"{len(records)} DAGs in {len(files)} files recorded to {FILES_FIXTURE.name}")


# Run by Airflow's Python: each DAG's edges as Airflow builds them ({dag_id: {task_id: [upstream...]}}).
_EDGES = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
for path in sys.argv[1:]:
    bag = DagBag(path)
    for dag_id, dag in bag.dags.items():
        edges = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
        print("EDGES", json.dumps({"file": path, "dag_id": dag_id, "upstream": edges}))
"""


def airflow_upstream(python: str, files: list[Path]) -> dict[str, dict[str, list[str]]]:
    """Each task's upstream ids as Airflow's own DAG objects hold them, by dag_id."""
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([python, "-c", _EDGES, *map(str, files)], capture_output=True, text=True, check=True, env=env)
    lines = [line.removeprefix("EDGES ") for line in done.stdout.splitlines() if line.startswith("EDGES ")]
    return {answer["dag_id"]: answer["upstream"] for answer in map(json.loads, lines)}


def _answer(answer: dict) -> dict:
    return {"run_state": answer["run_state"], "tasks": answer["tasks"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow-python", required=True)
    parser.add_argument("--count", type=int, default=520)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--files", action="store_true", help="record airflow_files/ instead of random DAGs")
    args = parser.parse_args()
    if args.files:
        record_files(args.airflow_python)
        return
    specs, set_aside = unambiguous_specs(args.seed, args.count)
    named = list(NAMED.values())
    answers = airflow_outcomes(args.airflow_python, named + specs)
    records = []
    disagreements = 0
    for spec in named + specs:
        answer = answers[spec.dag_id]
        expected = spec.expected()
        model = {
            "run_state": expected.run_state.value,
            "tasks": {t: {"state": s.value, "try_number": expected.tries[t]} for t, s in expected.states.items()},
        }
        if model != answer:
            disagreements += 1
            print(f"the model of Airflow's rules disagrees with Airflow on {spec.dag_id}", file=sys.stderr)
        records.append(
            {"name": spec.dag_id if spec.dag_id in NAMED else None, "spec": spec.to_dict(), "airflow": answer}
        )
    FIXTURE.write_text(dumps(records))
    print(
        f"{len(records)} DAGs recorded to {FIXTURE.name} ({len(named)} named, {len(specs)} random with seed "
        f"{args.seed}; {set_aside} drawn and set aside as order-dependent); "
        f"{disagreements} where airstep_local.expected_states disagrees with Airflow",
    )


if __name__ == "__main__":
    main()
