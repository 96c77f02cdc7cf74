"""The fault-injection suite at scale: 1,000 random DAG runs while AWS misbehaves, every record checked.

Faults: Lambda throttling and service errors, DynamoDB throttling inside the functions, invocations
delivered twice, status events duplicated and reordered; tasks that fail, skip, succeed on a retry or
run past their execution_timeout. Prints runs, tasks, faults injected by kind, records checked and
every record that was lost, stuck or wrong (there must be none). Run: python bench/fault_injection.py
[--runs N] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys

from airstep_local.fault_suite import run_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    with contextlib.redirect_stdout(io.StringIO()):  # the functions' metrics (EMF) print to stdout
        report = run_suite(options.runs, seed=options.seed)
    faults = ", ".join(f"{kind} {count}" for kind, count in sorted(report.faults.items()))
    print(f"runs: {report.runs}, tasks: {report.tasks}, in {report.seconds:.0f} s")
    print(f"faults injected: {sum(report.faults.values())} ({faults})")
    print(f"records checked: {report.records_checked} (every task instance and run, plus replayed status events)")
    print(f"lost, stuck or wrong records: {len(report.problems)}")
    for problem in report.problems:
        print(f"  {problem}")
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
