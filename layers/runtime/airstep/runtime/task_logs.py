"""Each try's log: what its code prints (stdout, stderr, a bash command's output), what it logs with
`logging`, and the traceback of the exception that failed it, masked, kept as the try's.

While a try runs (`capturing(key)`), every line its thread writes goes to the process's sink with
the try's key: in Lambda a JSON line on stdout, so CloudWatch Logs holds it with the run, task, map
index and try as fields (`airstep logs --stack` reads them back); locally a file per try beside the
run records (`FileSink`), the line also shown as the task printed it. Tries run in threads of one
process locally: a line belongs to the try of the thread (context) that wrote it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from airstep.runtime.constants import SERVICE_NAME
from airstep.sdk.baseoperator import TASK_LOGGER
from airstep.secrets_masker import redact, route_output

_AIRSTEP = str(Path(__file__).resolve().parents[1]) + os.sep  # the airstep package: its frames are not the task's
MARKER = "airstep_task_log"  # the field that marks a CloudWatch line as a try's
MAX_EVENT_CHARS = 64_000  # a longer line is several CloudWatch events (one may hold 256 KB, escaped JSON)
# Airflow's task log format
LINE_FORMAT = "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"


@dataclass(frozen=True, slots=True)
class TryKey:
    """Which try a log line belongs to."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    def path(self, root: Path) -> Path:
        """Its file under `root`: <dag>/<run>/<task>/<map_index>.<try>.log (ids made safe as names)."""
        return (
            run_folder(root, self.dag_id, self.run_id) / _safe(self.task_id) / f"{self.map_index}.{self.try_number}.log"
        )


def run_folder(root: Path, dag_id: str, run_id: str) -> Path:
    """Where a run's tries' logs are kept under `root`."""
    return root / _safe(dag_id) / _safe(run_id)


class Sink(Protocol):
    def write(self, key: TryKey, stream: str, line: str, raw: TextIO | None) -> None:
        """Keep `line` (masked, no newline) for `key`; `raw` is where the task wrote it, if anywhere."""


class CloudWatchSink:
    """In Lambda: each line as one JSON log event on stdout (CloudWatch Logs), with the try's key
    (`out`: write them there instead)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def write(self, key: TryKey, stream: str, line: str, raw: TextIO | None) -> None:
        target = self.out or raw or sys.__stdout__
        if target is None:
            return
        parts = [line[i : i + MAX_EVENT_CHARS] for i in range(0, len(line), MAX_EVENT_CHARS)] or [""]
        for number, part in enumerate(parts):
            event = {MARKER: True, **asdict(key), "stream": stream, "time": _now(), "message": part}
            if number < len(parts) - 1:
                event["continued"] = True  # the line goes on in the next event
            target.write(json.dumps(event) + "\n")


class FileSink:
    """Locally: one file per try under `root`, the line also written where the task wrote it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def write(self, key: TryKey, stream: str, line: str, raw: TextIO | None) -> None:
        if raw is not None:
            raw.write(line + "\n")
        path = key.path(self.root)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as log:
                log.write(line + "\n")


_sink: Sink = CloudWatchSink()
_current: contextvars.ContextVar[_TryLog | None] = contextvars.ContextVar("airstep_try_log", default=None)
_handler_lock = threading.Lock()
_handler: logging.Handler | None = None


def configure(sink: Sink) -> Sink:
    """Where tries' lines go from now on (the local engine: a FileSink); returns the previous sink."""
    global _sink
    previous, _sink = _sink, sink
    return previous


class _TryLog:
    """One try's lines as they are written: whole lines go to the sink, a partial one waits."""

    def __init__(self, key: TryKey) -> None:
        self.key = key
        self.partial: dict[str, tuple[str, TextIO | None]] = {}  # by stream: its unfinished line
        self.lock = threading.Lock()

    def write(self, stream: str, text: str, raw: TextIO | None) -> None:
        with self.lock:
            lines = (self.partial.pop(stream, ("", None))[0] + text).split("\n")
            if lines[-1]:
                self.partial[stream] = (lines[-1], raw)
        for line in lines[:-1]:  # masked again whole: a secret may have come in two writes
            _sink.write(self.key, stream, redact(line), raw)

    def flush(self) -> None:
        with self.lock:
            partial, self.partial = self.partial, {}
        for stream, (line, raw) in partial.items():
            _sink.write(self.key, stream, redact(line), raw)


@contextmanager
def capturing(key: TryKey) -> Iterator[None]:
    """Lines written (through airstep's masked streams) and records logged while this runs are the
    try's. Use inside `masked_output`, which routes sys.stdout and sys.stderr here."""
    _install_handler()
    log = _TryLog(key)
    token = _current.set(log)
    try:
        yield
    finally:
        log.flush()
        _current.reset(token)


def _route(stream: str, text: str, raw: TextIO) -> None:
    """Masked task output: the running try's lines, or written through outside any try."""
    log = _current.get()
    if log is None:
        raw.write(text)
    else:
        log.write(stream, text, raw)


route_output(_route)


def failed_with(exc: BaseException) -> None:
    """The try failed with `exc`: its traceback goes to the log, as Airflow's "Task failed with
    exception" (without airstep's own frames, unless the error is raised there)."""
    log = _current.get()
    if log is None:
        return
    error = traceback.TracebackException.from_exception(exc)
    theirs = [frame for frame in error.stack if not frame.filename.startswith(_AIRSTEP)]
    error.stack = traceback.StackSummary.from_list(theirs or error.stack[-1:])
    log.write("stderr", redact("Task failed with exception\n" + "".join(error.format())), None)


class _TryLogHandler(logging.Handler):
    """Records logged while a try runs (from any logger but airstep's own, at the levels the loggers
    let through) are the try's lines."""

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None:  # not a try's: shown as it would be without this handler
            if len(logging.getLogger().handlers) == 1 and record.levelno >= logging.lastResort.level:
                logging.lastResort.handle(record)
            return
        if record.name == SERVICE_NAME:
            return
        try:
            log.write("log", redact(self.format(record)) + "\n", None)
        except Exception:  # noqa: BLE001 - logging must never fail the try
            self.handleError(record)


def _install_handler() -> None:
    global _handler
    with _handler_lock:
        if _handler is None:
            _handler = _TryLogHandler(logging.INFO)
            _handler.setFormatter(logging.Formatter(LINE_FORMAT))
            logging.getLogger().addHandler(_handler)
            # Airflow's task loggers log INFO (`self.log`, logging.getLogger("airflow.task")); other loggers
            # keep their levels (the root's WARNING: lowering it for the process fails under some hosts)
            logging.getLogger(TASK_LOGGER).setLevel(logging.INFO)


def read_file(root: Path, key: TryKey) -> str | None:
    """A try's log kept locally, or None if it has none."""
    path = key.path(root)
    return path.read_text(encoding="utf-8") if path.exists() else None


def read_events(events: Iterator[dict[str, Any]] | list[dict[str, Any]], key: TryKey) -> str | None:
    """A try's log from CloudWatch Logs events (FilterLogEvents' `events`): its lines, in order."""
    wanted = asdict(key)
    lines: list[str] = []
    going_on = False  # the last line continues in the next event
    for event in events:
        try:
            parsed = json.loads(event["message"])
        except (ValueError, TypeError):
            continue
        if isinstance(parsed, dict) and parsed.get(MARKER) and all(parsed.get(k) == v for k, v in wanted.items()):
            part = str(parsed.get("message", ""))
            if going_on:
                lines[-1] += part
            else:
                lines.append(part)
            going_on = bool(parsed.get("continued"))
    return "".join(line + "\n" for line in lines) if lines else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _safe(name: str) -> str:
    """A name usable as one path component, whatever the id holds (a run id holds ':' and '+')."""
    kept = "".join(c if c.isalnum() or c in "-_.=" else f"%{ord(c):02X}" for c in name)
    return kept if kept not in (".", "..") else kept.replace(".", "%2E")
