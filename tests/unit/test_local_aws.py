"""The local engine's moto plumbing: the interpreter imports without moto's EC2, and Batch still works."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from airstep_cli.local.aws import import_interpreter
import_interpreter()
assert "moto.stepfunctions.parser.asl.parse.asl_parser" in sys.modules
assert "moto.ec2" not in sys.modules, "the interpreter pulled in moto's EC2 backend"
assert "moto.batch" not in sys.modules
import moto.batch  # a later Batch call gets the real package
assert hasattr(moto.batch, "batch_backends")
print("ok")
"""


def test_interpreter_imports_without_ec2_and_batch_still_imports():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
