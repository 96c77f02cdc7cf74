"""DAG files are parsed in a child process with a time limit and a memory cap: whatever a file does,
the caller gets data back (graph models or located import errors) and stays unharmed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from airstep.model import DagModel
from airstep.sandbox import ParseLimits, parse_dag_file

LIMITS = ParseLimits(timeout_seconds=2, memory_mb=512)
# Time is not what the memory case is about: a loaded machine zero-fills 512 MB slowly.
MEMORY_ONLY = ParseLimits(timeout_seconds=20, memory_mb=512)
# behaviour: (the file after its first line, the line the error names, what the error says); a
# process that ended leaves no line to name: line 1.
HOSTILE = {
    "loops forever": (
        "x = 0\nwhile True: x += 1\n",
        3,
        "DagImportTimeout: importing the DAG file took longer than 2 s",
    ),
    "sleeps": ("import time\ntime.sleep(60)\n", 3, "DagImportTimeout"),
    "exhausts memory": (
        "chunks = []\nwhile True:\n    chunks.append(bytearray(50_000_000))\n",
        4,
        "MemoryError: loading the DAG file used more than 512 MB",
        MEMORY_ONLY,
    ),
    "ends the process": ("import os\nos._exit(3)\n", 1, "ended the process loading it (exit code 3)"),
    "kills itself": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", 1, "was killed (SIGKILL)"),
    "raises SystemExit": ("import sys\nsys.exit(4)\n", 3, "SystemExit: 4"),
}


@pytest.mark.parametrize("behaviour", sorted(HOSTILE))
def test_a_hostile_file_becomes_a_located_import_error(tmp_path, behaviour):
    source, line, message, *given = HOSTILE[behaviour]
    limits = given[0] if given else LIMITS
    path = tmp_path / "hostile.py"
    path.write_text("from airstep import DAG\n" + source)
    started = time.monotonic()
    parsed = parse_dag_file(path, limits=limits)
    assert time.monotonic() - started < limits.timeout_seconds + 3
    assert parsed.models == []
    (error,) = parsed.errors
    assert (error.file, error.line) == (str(path), line), error
    assert message in error.message


def test_a_good_file_gives_its_models_and_the_helpers_it_imported(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "__init__.py").write_text("")
    (tmp_path / "common" / "naming.py").write_text("def task_name(i):\n    return f'step_{i}'\n")
    path = tmp_path / "pipeline.py"
    path.write_text(
        textwrap.dedent(
            """
            from airstep import DAG, EmptyOperator
            from common.naming import task_name

            with DAG("pipeline"):
                EmptyOperator(task_id=task_name(1)) >> EmptyOperator(task_id=task_name(2))
            """
        )
    )
    parsed = parse_dag_file(path, uri="s3://bucket/dags/pipeline.py", limits=LIMITS)
    assert parsed.errors == []
    (model,) = [DagModel.from_json(m) for m in parsed.models]
    assert (model.dag_id, [t.task_id for t in model.tasks], model.file) == (
        "pipeline",
        ["step_1", "step_2"],
        "s3://bucket/dags/pipeline.py",
    )
    assert parsed.imports == ["common/__init__.py", "common/naming.py"]


def test_the_parsing_process_gets_no_aws_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    path = tmp_path / "peek.py"
    path.write_text("import os\nraise RuntimeError(sorted(k for k in os.environ if k.startswith('AWS_')))\n")
    (error,) = parse_dag_file(path, limits=LIMITS).errors
    assert "AWS_ACCESS_KEY_ID" not in error.message and "AWS_SECRET_ACCESS_KEY" not in error.message


def test_validate_on_a_file_that_never_returns_ends_with_an_import_error(tmp_path):
    path = tmp_path / "forever.py"
    path.write_text("from airstep import DAG\nwhile True:\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "airstep_cli.main", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**__import__("os").environ, "AIRSTEP_DAG_IMPORT_TIMEOUT": "2"},
        check=False,
    )
    assert proc.returncode == 1
    assert f"{path}:2: DagImportTimeout" in proc.stderr and "Traceback" not in proc.stderr


def test_a_path_relative_to_the_working_folder_parses_as_given(tmp_path, monkeypatch):
    # the child runs in a scratch folder; the error and model still name the path as the user gave it
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "two.py").write_text(
        "from airstep import DAG, EmptyOperator\nwith DAG('two'):\n    EmptyOperator(task_id='a')\n"
    )
    monkeypatch.chdir(tmp_path)
    parsed = parse_dag_file("dags/two.py", limits=LIMITS)
    assert parsed.errors == []
    assert DagModel.from_json(parsed.models[0]).file == "dags/two.py"
