"""Every example DAG runs on the local engine: compiled machine on moto, real task runner."""

from datetime import UTC

from airstep.runtime.store import RunKey
from helpers import EXAMPLES


def states(result):
    return {t.task_id: t.state for t in result.tasks}


def tries(result):
    return {t.task_id: t.try_number for t in result.tasks}


def xcoms(engine, result, *task_ids):
    return engine.store.get_xcoms(RunKey(result.dag_id, result.run_id), list(task_ids))


def test_etl_passes_values(run_file, engine):
    from datetime import datetime

    result = run_file(EXAMPLES / "etl_taskflow.py", logical_date=datetime(2026, 3, 4, tzinfo=UTC))
    assert result.state == "success"
    assert set(states(result).values()) == {"success"}
    values = xcoms(engine, result, "extract", "transform", "load")
    assert values["transform"] == {"count": 3, "total": 120}
    assert values["load"] == "2026-03-04: 3 rows, total 120"
    assert engine.store.get_run(RunKey(result.dag_id, result.run_id)).state == "success"


def test_conf_overrides_params(run_file, engine):
    result = run_file(EXAMPLES / "etl_taskflow.py", conf={"factor": 1})
    assert xcoms(engine, result, "transform")["transform"] == {"count": 3, "total": 12}


def test_fan_out_fan_in(run_file, engine):
    result = run_file(EXAMPLES / "fan_out_fan_in.py")
    assert result.state == "success"
    assert len(result.tasks) == 8
    assert xcoms(engine, result, "total")["total"] == sum((7 + i) ** 2 for i in range(5))


def test_flaky_task_succeeds_on_third_try(run_file, engine):
    result = run_file(EXAMPLES / "flaky_retries.py")
    assert result.state == "success"
    assert tries(result) == {"flaky": 3, "report": 1}
    assert xcoms(engine, result, "report")["report"] == "SUCCEEDED ON TRY 3"


def test_bash_tasks(run_file, engine):
    result = run_file(EXAMPLES / "bash_task.py")
    assert result.state == "success"
    values = xcoms(engine, result, "greet", "where", "shout")
    assert values["greet"] == "bonjour, greet"
    assert values["where"] == "/tmp"
    assert values["shout"] == "BONJOUR, GREET in /tmp"


def test_non_series_parallel_respects_every_edge(run_file, engine):
    from helpers import load_model

    result = run_file(EXAMPLES / "non_series_parallel.py")
    assert result.state == "success"
    by_id = {t.task_id: t for t in result.tasks}
    model, _ = load_model(EXAMPLES / "non_series_parallel.py")
    for task in model.tasks:
        for up in task.upstream:
            assert by_id[up].end <= by_id[task.task_id].start, f"{up} -> {task.task_id}"
    # d (0.1 s after b) must not wait for a (1 s): the grid starts before a ends
    assert by_id["g_0_0"].start < by_id["a"].end


def test_a_mapped_task_group_decides_each_partition_at_its_own_index(run_file, engine):
    result = run_file(EXAMPLES / "per_partition.py")
    assert {t.label: str(t.state) for t in result.tasks if "[1]" in t.label} == {
        "per_day.extract[1]": "success",
        "per_day.validate[1]": "failed",
        "per_day.load[1]": "upstream_failed",
    }
    assert xcoms(engine, result, "summary") == {
        "summary": ["loaded 100 rows for 2026-01-01", "loaded 100 rows for 2026-01-03"]
    }
