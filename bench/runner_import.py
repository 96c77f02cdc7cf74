"""Cold-start import time of the task runner as Lambda loads it (fresh interpreter each time).

Also checks that the runner does not import moto, typer or rich (they never ship to Lambda).
Run: python bench/runner_import.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = (
    "import time, sys; t = time.perf_counter(); import airstep.runtime.task_runner; "
    "print(time.perf_counter() - t); "
    "print(','.join(m for m in ('moto', 'typer', 'rich', 'airstep_cli', 'airstep_local', 'airstep_compiler') "
    "if m in sys.modules))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    samples, leaked = [], set()
    for _ in range(options.repeat):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split(
            "\n"
        )
        samples.append(float(out[0]))
        leaked |= {m for m in out[1].split(",") if m}
    print(
        f"import airstep.runtime.task_runner: median {statistics.median(samples) * 1000:.0f} ms "
        f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f}, {options.repeat} cold interpreters)"
    )
    print("CLI/local-only modules imported by the runner: " + (", ".join(sorted(leaked)) or "none"))
    if leaked:
        sys.exit(1)


if __name__ == "__main__":
    main()
