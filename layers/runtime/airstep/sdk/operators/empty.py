"""EmptyOperator: does nothing; useful to shape the graph."""

from __future__ import annotations

from typing import Any

from airstep.sdk.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """Does nothing; useful to shape the graph."""

    def container_refusal(self) -> str | None:
        return "it runs no code: a container would start for nothing (Airflow never sends it to an executor)"

    def execute(self, context: dict[str, Any]) -> None:
        return None
