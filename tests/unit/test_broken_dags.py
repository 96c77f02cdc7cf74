"""Every file in tests/broken_dags states on its first line the error it must produce."""

import pytest

from forked_cli import run_cli
from helpers import BROKEN, ROOT

CASES = sorted(BROKEN.glob("*.py"))


def expectation(path):
    first = path.read_bytes().splitlines()[0].decode()
    line, _, message = first.removeprefix("# expect: ").partition(": ")
    return int(line), message


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_validate_names_file_line_and_problem(path):
    line, message = expectation(path)
    proc = run_cli("validate", path, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{path}:{line}: " in proc.stderr
    assert message in proc.stderr


def test_validate_reports_every_broken_file_at_once():
    proc = run_cli("validate", BROKEN, cwd=ROOT)
    assert proc.returncode == 1
    reported = {line.split(":")[0] for line in proc.stderr.splitlines()}
    assert reported == {str(p) for p in CASES}
