"""Secret values become `***` wherever airstep writes text: task logs, errors, run records, failure
causes and Step Functions history (Airflow's secrets masker, with its rules).

A value is registered when a task reads it: a connection's password and the extras whose names look
sensitive, a variable whose key looks sensitive (`Variable.get("api_key")`), or anything passed to
`mask_secret`. Registered values are masked as written, URL-encoded and JSON-escaped; values shorter
than five characters are not masked (Airflow's `min_length_masked_secret`), since masking `1` or
`true` everywhere would hide more than it protects.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO
from urllib.parse import quote

MASK = "***"
MIN_LENGTH = 5
# Airflow's DEFAULT_SENSITIVE_FIELDS: a name containing one of these marks its value as a secret.
SENSITIVE_FIELDS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "secret",
        "token",
        "keyfile_dict",
        "service_account",
    }
)


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(field in lowered for field in SENSITIVE_FIELDS)


class SecretsMasker:
    """The process's registered secrets and the pattern that replaces them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secret: Any, name: str | None = None) -> None:
        """Register `secret` (a string, or a dict/list whose sensitive-named values are secrets); with a
        `name`, only if the name looks sensitive."""
        if isinstance(secret, dict):
            for key, value in secret.items():
                self.add(value, str(key)) if is_sensitive(str(key)) else self._add_nested(value)
            return
        if isinstance(secret, (list, tuple, set)):
            for value in secret:
                self.add(value, name)
            return
        if name is not None and not is_sensitive(name):
            return
        if not isinstance(secret, str) or len(secret) < MIN_LENGTH:
            return
        forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            self._pattern = re.compile("|".join(re.escape(s) for s in sorted(self._secrets, key=len, reverse=True)))

    def _add_nested(self, value: Any) -> None:
        if isinstance(value, (dict, list, tuple, set)):
            self.add(value)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None and text else text

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._pattern = None


def _masker() -> SecretsMasker:
    from airstep.runtime.clients import registry

    return registry.get("secrets_masker", SecretsMasker)


def mask_secret(secret: str | dict[str, Any] | Iterable[Any], name: str | None = None) -> None:
    """Mask `secret` in everything airstep writes from now on (Airflow's `mask_secret`)."""
    _masker().add(secret, name)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    return _masker().redact(text)


# Where masked task output goes: (stream name, masked text, the stream the task wrote to)
Router = Callable[[str, str, TextIO], None]


def _write_through(name: str, text: str, stream: TextIO) -> None:
    stream.write(text)


_router: Router = _write_through


def route_output(router: Router) -> None:
    """Send masked task output through `router` (airstep.runtime.task_logs: into the running try's log)."""
    global _router
    _router = router


class RedactingStream(io.TextIOBase):
    """A text stream that masks secrets in what is written to it (task output: print, bash)."""

    def __init__(self, stream: TextIO, name: str = "stdout") -> None:
        self.stream = stream
        self.name = name

    def write(self, text: str) -> int:
        _router(self.name, redact(text), self.stream)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _MaskedOutput:
    """While any task runs, sys.stdout and sys.stderr mask secrets; when the last one ends, the
    streams go back to what they were (unless something else replaced them meanwhile).

    Every stream this puts in or takes out of `sys` stays referenced for the life of the process:
    `print()` holds `sys.stdout` by a borrowed reference while it writes (CPython up to 3.12.9 and
    3.13.2, gh-130163), so a stream swapped out by another thread and freed meanwhile would be used
    after it is freed and crash the process. One masked stream per underlying stream and name, reused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved: tuple[Any, Any] | None = None
        # by id() of the stream it wraps (which it keeps alive) and its name: stdout and stderr may be one stream
        self._masked: dict[tuple[int, str], RedactingStream] = {}

    def _masking(self, stream: Any, name: str) -> Any:
        if isinstance(stream, RedactingStream):  # never a masked stream around another
            return stream
        masked = self._masked.get((id(stream), name))
        if masked is None:
            masked = self._masked[(id(stream), name)] = RedactingStream(stream, name)
        return masked

    def __enter__(self) -> None:
        with self._lock:
            self._running += 1
            if self._running == 1:
                self._saved = (sys.stdout, sys.stderr)
                sys.stdout = self._masking(sys.stdout, "stdout")
                sys.stderr = self._masking(sys.stderr, "stderr")

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._saved is not None:
                if isinstance(sys.stdout, RedactingStream) and sys.stdout.stream is self._saved[0]:
                    sys.stdout = self._saved[0]
                if isinstance(sys.stderr, RedactingStream) and sys.stderr.stream is self._saved[1]:
                    sys.stderr = self._saved[1]
                self._saved = None


masked_output = _MaskedOutput()
"""`with masked_output:` around task code: what it prints is masked, and only while it runs."""
