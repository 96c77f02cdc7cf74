"""Parses a DAG file the way Airflow's DAG processor does: in a fresh process, with a time limit.

The file runs in a child process that holds nothing of its parent's (no clients, no credentials
beyond the environment it is given), under a memory cap and a time limit (Airflow's
`dagbag_import_timeout`, 30 s by default). What comes back is data: the graph models of the file's
DAGs, its import errors as `file:line: message`, and the modules it imported from its own folder
tree. A file that loops, exhausts memory or ends the process becomes an import error naming the file
and the reason; nothing the file does reaches the caller's process.

    python -m airstep.sandbox JOB_JSON   (the child; JOB_JSON names the file and where to write)
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airstep.loader import DagLoadError, content_version

IMPORT_TIMEOUT_ENV = "AIRSTEP_DAG_IMPORT_TIMEOUT"
AIRFLOW_IMPORT_TIMEOUT_ENV = "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"  # honoured too, for Airflow users
IMPORT_MEMORY_ENV = "AIRSTEP_DAG_IMPORT_MEMORY_MB"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MEMORY_MB = 1024
KILL_GRACE_SECONDS = 5.0  # past the limit, a child stuck in C code is killed


class DagImportTimeout(BaseException):
    """Raised inside the DAG file's code when its import runs past the time limit."""


@dataclass(frozen=True, slots=True)
class ParseLimits:
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB

    @classmethod
    def from_env(cls) -> ParseLimits:
        timeout = os.environ.get(IMPORT_TIMEOUT_ENV) or os.environ.get(AIRFLOW_IMPORT_TIMEOUT_ENV)
        memory = os.environ.get(IMPORT_MEMORY_ENV)
        return cls(float(timeout) if timeout else DEFAULT_TIMEOUT_SECONDS, int(memory) if memory else DEFAULT_MEMORY_MB)


@dataclass(slots=True)
class ParsedFile:
    """What parsing one DAG file gave: its DAGs' graph models (JSON), or the errors that stopped it,
    and the modules (paths relative to `root`) it imported from its own folder tree."""

    file: str
    version: str
    models: list[str] = field(default_factory=list)
    errors: list[DagLoadError] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "version": self.version,
            "models": self.models,
            "errors": [{"line": e.line, "message": e.message} for e in self.errors],
            "imports": self.imports,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsedFile:
        errors = [DagLoadError(data["file"], e["line"], e["message"]) for e in data["errors"]]
        return cls(data["file"], data["version"], data["models"], errors, data.get("imports", []))


def parse_dag_file(
    path: str | Path,
    *,
    uri: str | None = None,
    root: str | Path | None = None,
    limits: ParseLimits | None = None,
    every_refusal: bool = False,
) -> ParsedFile:
    """Parse the DAG file at `path` in a child process. Its DAGs and errors name `uri` (default: the
    path); `root` (default: the file's folder) is put on the child's sys.path, as Airflow puts the
    DAGs folder, and is where `imports` are counted from. `every_refusal`: see `load_dag_file`."""
    limits = limits or ParseLimits.from_env()
    path = Path(path)
    name = uri or str(path)
    try:
        version = content_version(path.read_bytes())
    except OSError as exc:
        return ParsedFile(name, "", errors=[DagLoadError(name, 0, f"cannot read file: {exc.strerror or exc}")])
    with tempfile.TemporaryDirectory(prefix="airstep-parse-") as scratch:
        result = Path(scratch) / "result.json"
        # the child runs in the scratch folder: every path it gets is absolute
        job = {"path": str(path.resolve()), "uri": name, "root": str(Path(root or path.parent).resolve())}
        job["result"] = str(result)
        job["timeout"] = limits.timeout_seconds
        job["every_refusal"] = every_refusal
        try:
            child = subprocess.run(  # noqa: S603 - our own module, in this interpreter
                [sys.executable, "-m", "airstep.sandbox", json.dumps(job)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=limits.timeout_seconds + KILL_GRACE_SECONDS,
                preexec_fn=_memory_cap(limits.memory_mb),  # noqa: PLW1509 - setrlimit in the child only
                cwd=scratch,
                env=_child_environment(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ParsedFile(name, version, errors=[DagLoadError(name, 1, _timeout_message(limits))])
        if not result.exists():
            return ParsedFile(name, version, errors=[DagLoadError(name, 1, _death_message(child.returncode, limits))])
        parsed = ParsedFile.from_dict(json.loads(result.read_text()))
    memory = f"MemoryError: loading the DAG file used more than {limits.memory_mb} MB ({IMPORT_MEMORY_ENV})"
    parsed.errors = [
        DagLoadError(e.file, e.line, memory) if e.message.startswith("MemoryError") else e for e in parsed.errors
    ]
    return parsed


def _memory_cap(memory_mb: int) -> Any:
    def apply() -> None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _child_environment() -> dict[str, str]:
    """The child's environment: this one, without AWS credentials or a way to find any (a DAG file's
    top level has no business calling AWS, and in the parse function there are none anyway)."""
    secret = ("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION", "AWS_CONTAINER_", "AWS_WEB_IDENTITY", "AWS_PROFILE")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(secret)}
    environment.update(
        AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull
    )
    return environment


def _timeout_message(limits: ParseLimits) -> str:
    return (
        f"DagImportTimeout: importing the DAG file took longer than {limits.timeout_seconds:g} s "
        f"({IMPORT_TIMEOUT_ENV}, Airflow's dagbag_import_timeout); do less work at the file's top level"
    )


def _death_message(code: int, limits: ParseLimits) -> str:
    if code < 0:
        reason = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"the process loading the DAG file was killed ({reason}); memory limit {limits.memory_mb} MB"
    return f"the DAG file ended the process loading it (exit code {code}) before it was loaded"


def _child(job: dict[str, Any]) -> None:
    """In the child: load the file, write what it gave, and nothing else."""
    from airstep.loader import load_dag_file
    from airstep.model import DagModel

    root = str(Path(job["root"]).resolve())
    sys.path.insert(0, root)

    def on_alarm(signum: int, frame: Any) -> None:
        raise DagImportTimeout(_timeout_message(ParseLimits(timeout_seconds=job["timeout"])).split(": ", 1)[1])

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, job["timeout"])
    source = Path(job["path"]).read_bytes()
    version = content_version(source)
    try:
        loaded = load_dag_file(
            job["uri"], source, module_file=str(Path(job["path"]).resolve()), every_refusal=job["every_refusal"]
        )
    except MemoryError:  # so far gone that even reporting the file's own error failed
        error = DagLoadError(job["uri"], 1, "MemoryError")
        Path(job["result"]).write_text(json.dumps(ParsedFile(job["uri"], version, errors=[error]).to_dict()))
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    own = str(Path(job["path"]).resolve())
    imports = sorted(
        os.path.relpath(module_file, root)
        for module in list(sys.modules.values())
        if (module_file := getattr(module, "__file__", None))
        and (resolved := str(Path(module_file).resolve())).startswith(root + os.sep)
        and resolved != own
    )
    models = [DagModel.from_dag(dag).to_json() for dag in loaded.dags.values()]
    parsed = ParsedFile(job["uri"], version, models, loaded.errors, imports)
    Path(job["result"]).write_text(json.dumps(parsed.to_dict()))


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
    sys.stdout.flush()
    os._exit(0)  # nothing the DAG file left behind (threads, atexit hooks) may run on
