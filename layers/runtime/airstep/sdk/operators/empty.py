"""EmptyOperator: does nothing; useful to shape the graph."""

from __future__ import annotations

from typing import Any

from airstep.sdk.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """Does nothing; useful to shape the graph."""

    def execute(self, context: dict[str, Any]) -> None:
        return None
