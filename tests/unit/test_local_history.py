"""Local run history (`.airstep/local-metadata.json`) keeps each DAG's newest runs."""

from airstep_local.engine import _newest_runs


def run_items(dag_id: str, run_id: str, start: str) -> dict:
    pk = f"RUN#{dag_id}#{run_id}"
    return {
        (pk, "RUN"): {"pk": {"S": pk}, "sk": {"S": "RUN"}, "dag_id": {"S": dag_id}, "start_date": {"S": start}},
        (pk, "TI#t#-1"): {"pk": {"S": pk}, "sk": {"S": "TI#t#-1"}},
    }


def test_only_the_newest_runs_of_each_dag_and_their_task_instances_stay():
    items = {("DAG#a", "DAG"): {"pk": {"S": "DAG#a"}, "sk": {"S": "DAG"}}}
    for n, start in enumerate(["2026-01-01", "2026-01-03", "2026-01-02"]):
        items.update(run_items("a", f"r{n}", start))
    items.update(run_items("b", "old", "2020-01-01"))
    kept = _newest_runs(items, whole=2, records=2)
    assert {pk for pk, _ in kept} == {"DAG#a", "RUN#a#r1", "RUN#a#r2", "RUN#b#old"}
    assert ("RUN#a#r1", "TI#t#-1") in kept and ("RUN#a#r0", "TI#t#-1") not in kept


def test_older_runs_keep_their_record_alone_up_to_a_larger_bound():
    """A backfill reads which logical dates have runs: the record outlives the task instances."""
    items = {}
    for n, start in enumerate(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]):
        items.update(run_items("a", f"r{n}", start))
    kept = _newest_runs(items, whole=1, records=3)
    assert sorted(kept) == [
        ("RUN#a#r1", "RUN"),
        ("RUN#a#r2", "RUN"),
        ("RUN#a#r3", "RUN"),
        ("RUN#a#r3", "TI#t#-1"),
    ]
