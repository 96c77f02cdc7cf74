"""Errors in what the user gave the `airstep` command."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """A problem in what the user gave us: printed without a traceback, exit code 1."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))
