"""`dag.test()`: Airflow's tutorials end with `if __name__ == "__main__": dag.test()`; the file then
runs itself on the local engine, as `airstep run` runs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BODY = """
@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
def selftest():
    @task
    def greet(params=None):
        print("greeting", params["who"])
        return params["who"]

    greet()


the_dag = selftest()

if __name__ == "__main__":
    result = the_dag.test(run_conf={"who": "me"})
    print("RESULT", result.state, [(t.task_id, str(t.state)) for t in result.tasks])
"""


def _script(tmp_path, imports: str):
    path = tmp_path / "selftest.py"
    path.write_text("import pendulum\n" + imports + "\n" + textwrap.dedent(BODY))
    return path


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path, check=False)


def test_python_my_dag_py_runs_it_on_the_local_engine(tmp_path):
    path = _script(tmp_path, "from airstep import dag, task")
    proc = _run(tmp_path, str(path))
    assert proc.returncode == 0, proc.stderr
    assert "RESULT success [('greet', 'success')]" in proc.stdout
    assert "│ greet │ success │" in proc.stdout


def test_an_unmodified_airflow_file_runs_itself_with_python_m_airstep(tmp_path):
    path = _script(tmp_path, "from airflow.sdk import dag, task")
    proc = _run(tmp_path, "-m", "airstep", path.name)
    assert proc.returncode == 0, proc.stderr
    assert "RESULT success [('greet', 'success')]" in proc.stdout
    plain = _run(tmp_path, path.name)  # no Airflow here, and airstep installs no module named airflow
    assert plain.returncode == 1 and "No module named 'airflow'" in plain.stderr


def test_a_dag_airstep_cannot_run_is_an_error_without_traceback(tmp_path):
    path = tmp_path / "cyclic.py"
    path.write_text(
        "from airstep import DAG, EmptyOperator\n"
        "with DAG('cyclic') as d:\n"
        "    a, b = EmptyOperator(task_id='a'), EmptyOperator(task_id='b')\n"
        "    a >> b >> a\n"
        "if __name__ == '__main__':\n"
        "    d.test()\n"
    )
    proc = _run(tmp_path, str(path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "cyclic.py:4: DAG 'cyclic' has a cycle: a -> b -> a" in proc.stderr
