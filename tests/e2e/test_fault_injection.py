"""A few dozen runs of the fault-injection suite (bench/fault_injection.py runs 1,000)."""

from airstep_local.fault_suite import FaultRates, run_suite


def test_no_record_is_lost_stuck_or_wrong_under_faults(capsys):
    report = run_suite(24, seed=7, rates=FaultRates(throttle=0.08, dynamodb_throttle=0.03, duplicate=0.06))
    assert report.problems == []
    assert report.runs == 24 and report.records_checked == report.tasks + report.runs
    kinds = {kind.split(":", 1)[1] for kind in report.faults}
    assert {"TooManyRequestsException", "ProvisionedThroughputExceededException", "duplicate"} <= kinds
    print(f"{report.runs} runs, {sum(report.faults.values())} faults, {report.records_checked} records checked")
