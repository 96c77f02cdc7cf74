"""`python -m airstep my_dag.py [args...]`: run a DAG file as a script with Airflow's imports answered by
airstep, for unmodified Airflow files that end with `if __name__ == "__main__": dag.test()`. (Plain
`python my_dag.py` cannot import `airflow` unless Airflow is installed; airstep never installs a
module of that name.)"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from airstep.compat.imports import airflow_imports


def main() -> None:
    if len(sys.argv) < 2:
        print("usage: python -m airstep DAG_FILE [args...]", file=sys.stderr)
        raise SystemExit(2)
    path = Path(sys.argv[1])
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = sys.argv[1:]
    sys.path.insert(0, str(path.resolve().parent))  # as `python my_dag.py` would
    with airflow_imports():
        runpy.run_path(str(path), run_name="__main__")


if __name__ == "__main__":
    main()
