"""Task and DAG callbacks as Airflow 3.3 runs them. AIRFLOW_LINES is what Airflow's dag.test() wrote
for tests/fixtures/airflow_examples/airstep_callbacks.py (the oracle, AIRSTEP_CALLBACK_LOG set): it
pins that on_execute runs before every try, on_retry gets the exception of a try that will be
retried and on_failure that of the last one, on_skipped follows AirflowSkipException, default_args
callbacks apply, an upstream_failed task gets none, a callback that raises changes nothing (not even
the callbacks after it), and the DAG's callback sees the failed (or last) task instance with reason
"task_failure" (or "success")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airstep_local.engine import LocalEngine, RunRequest
from helpers import ROOT, load_model

FILE = ROOT / "tests" / "fixtures" / "airflow_examples" / "airstep_callbacks.py"
AIRFLOW_LINES = {
    "airstep_callbacks_failing": [
        "execute task=ok try=1 exception=None reason=None has_context=True",
        "success task=ok try=1 exception=None reason=None has_context=True",
        "execute task=fails try=1 exception=None reason=None has_context=True",
        "retry task=fails try=1 exception=ValueError reason=None has_context=True",
        "execute task=fails try=2 exception=None reason=None has_context=True",
        "failure task=fails try=2 exception=ValueError reason=None has_context=True",
        "execute task=skipped try=1 exception=None reason=None has_context=True",
        "skipped task=skipped try=1 exception=None reason=None has_context=True",
        "default_success task=defaulted try=1 exception=None reason=None has_context=True",
        "dag_failure task=fails try=2 exception=None reason=task_failure has_context=True",
    ],
    "airstep_callbacks_passing": [
        "success task=first try=1 exception=None reason=None has_context=True",
        "dag_success task=last try=1 exception=None reason=success has_context=True",
    ],
    # the run's success callback is about the last task that succeeded, not the last to end
    "airstep_callbacks_last_skips": ["dag_success task=runs try=1 exception=None reason=success has_context=True"],
}
RUN_STATES = {
    "airstep_callbacks_failing": "failed",
    "airstep_callbacks_passing": "success",
    "airstep_callbacks_last_skips": "success",
}


@pytest.mark.parametrize("dag_id", sorted(AIRFLOW_LINES))
def test_callbacks_run_as_in_airflow(dag_id, tmp_path, monkeypatch):
    log = tmp_path / "callbacks.log"
    monkeypatch.setenv("AIRSTEP_CALLBACK_LOG", str(log))
    model, source = load_model(FILE, dag_id)
    with LocalEngine() as engine:
        result = engine.run(model, source, RunRequest(datetime(2026, 1, 1, tzinfo=UTC), fast_retries=True))
    assert result.state.value == RUN_STATES[dag_id]
    lines = log.read_text().splitlines()
    assert sorted(lines) == sorted(AIRFLOW_LINES[dag_id])
    for task in {line.split()[1] for line in lines}:  # each task's callbacks in Airflow's order
        assert [x for x in lines if x.split()[1] == task] == [x for x in AIRFLOW_LINES[dag_id] if x.split()[1] == task]
    assert lines[-1].startswith("dag_")  # the run's callback comes after every task's


def test_a_callback_must_be_callable(tmp_path):
    from airstep.loader import load_dag_file

    path = tmp_path / "bad_callback.py"
    path.write_text(
        "from airflow.sdk import DAG\nfrom airflow.providers.standard.operators.empty import EmptyOperator\n"
        "with DAG('bad_callback', schedule=None):\n"
        "    EmptyOperator(task_id='t', on_failure_callback='page someone')\n"
    )
    (error,) = load_dag_file(path).errors
    assert error.line == 4
    assert "on_failure_callback must be a callable or a list of callables, got 'page someone'" in error.message
