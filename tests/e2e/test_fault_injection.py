"""A few dozen runs of the fault-injection suite (bench/fault_injection.py runs 1,000), in a process
of their own, which starts when the tests are collected (tests/conftest.py) and works while the
others run.

Two dozen runs at once load one process with a few hundred threads: this is where a crash was found
(print() writing to a masked stream that another thread had just taken out of sys and freed; see
airstep.secrets_masker). A crash here fails this test with its stacks and cannot corrupt the memory
of the tests that run after it."""

import json
import subprocess
import sys

from conformance.airstep_runs import NICE

SUITE = """
import json
from airstep_local.fault_suite import FaultRates, run_suite
report = run_suite(24, seed=7, rates=FaultRates(throttle=0.08, dynamodb_throttle=0.03, duplicate=0.06))
print("REPORT " + json.dumps({"problems": report.problems, "runs": report.runs, "tasks": report.tasks,
                               "records_checked": report.records_checked, "faults": dict(report.faults)}))
"""


_suite: subprocess.Popen[str] | None = None


def start_suite() -> None:
    """Start the suite's process (once)."""
    global _suite
    if _suite is None:
        command = ["nice", "-n", str(NICE), sys.executable, "-X", "faulthandler", "-c", SUITE]
        _suite = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_suite() -> None:
    if _suite is not None and _suite.poll() is None:
        _suite.kill()


def test_no_record_is_lost_stuck_or_wrong_under_faults():
    start_suite()
    assert _suite is not None
    stdout, stderr = _suite.communicate(timeout=900)
    lines = [line for line in stdout.splitlines() if line.startswith("REPORT ")]
    assert _suite.returncode == 0 and lines, f"exit {_suite.returncode}: {stderr[-4000:]}"
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert not report["problems"], "\n".join(report["problems"])
    assert report["runs"] == 24 and report["records_checked"] == report["tasks"] + report["runs"]
    kinds = {kind.split(":", 1)[1] for kind in report["faults"]}
    assert {"TooManyRequestsException", "ProvisionedThroughputExceededException", "duplicate"} <= kinds
    print(
        f"{report['runs']} runs, {sum(report['faults'].values())} faults, {report['records_checked']} records checked"
    )
