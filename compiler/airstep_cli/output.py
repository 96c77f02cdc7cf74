"""What the CLI prints: its two consoles (results on stdout, progress and errors on stderr), state
colours, tables, and a run's progress as it goes."""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from airstep.model import DagModel
from airstep.states import FINISHED, RunState, TaskState

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE_STYLE = {
    TaskState.SUCCESS: "green",
    TaskState.FAILED: "red",
    TaskState.UPSTREAM_FAILED: "dark_orange",
    TaskState.SKIPPED: "magenta",
    TaskState.RUNNING: "cyan",
    TaskState.UP_FOR_RETRY: "yellow",
    RunState.QUEUED: "white",
}


def print_errors(lines: list[str]) -> None:
    """Print each line to stderr as it is (no markup)."""
    for line in lines:
        err.print(line, markup=False)


def fail(lines: list[str], code: int = 1) -> NoReturn:
    """Print the error lines and end the command with `code`."""
    print_errors(lines)
    raise typer.Exit(code)


class Progress:
    """Prints a line to stderr whenever a task instance changes state."""

    def __init__(self, model: DagModel, kept: Collection[str] = ()) -> None:
        """`kept`: instances a clear left finished (a run run again): counted, never reported."""
        self.tasks = len(model.tasks)
        self.kept = frozenset(kept)
        self.instances: set[str] = {label for label in kept if label.endswith("]")}  # mapped instances seen
        self.expanded: set[str] = {label.rsplit("[", 1)[0] for label in self.instances}  # ("task[i]"), their tasks
        self.finished: set[str] = set(kept)
        self.lock = threading.Lock()

    @property
    def total(self) -> int:
        """Task instances known so far: a mapped task counts its instances once it has expanded."""
        return self.tasks - len(self.expanded) + len(self.instances)

    def __call__(self, task_id: str, state: TaskState, try_number: int) -> None:
        if task_id in self.kept:
            return
        with self.lock:
            if task_id.endswith("]"):
                self.instances.add(task_id)
                self.expanded.add(task_id.rsplit("[", 1)[0])
            if state in FINISHED:
                self.finished.add(task_id)
            style = STATE_STYLE.get(state, "white")
            tries = f" [dim](try {try_number})[/dim]" if try_number > 1 else ""
            err.print(
                f"[dim]{len(self.finished):>4}/{self.total}[/dim] [{style}]{state:<15}[/{style}] {task_id}{tries}"
            )


def print_table(result: Any) -> None:
    """A run's result (RunResult): its task instances, failed tries' errors, and its state."""
    out.print(f"[bold]{result.dag_id}[/bold] {result.run_id}")
    table = Table()
    for column, justify in (("task", "left"), ("state", "left"), ("tries", "right"), ("duration", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for ti in result.tasks:
        style = STATE_STYLE.get(ti.state, "white") if ti.state else "white"
        duration = f"{ti.duration:.2f}s" if ti.duration is not None else "-"
        name = f"{ti.label} ({ti.rendered_map_index})" if ti.rendered_map_index else ti.label  # map_index_template
        table.add_row(escape(name), f"[{style}]{ti.state or 'none'}[/{style}]", str(ti.try_number), duration)
    out.print(table)
    for ti in result.tasks:
        if ti.state is TaskState.FAILED and ti.error:
            out.print(f"[red]{ti.label}[/red] (try {ti.try_number}): {ti.error}", markup=True)
    style = STATE_STYLE.get(result.state, "white")
    out.print(f"run [{style}]{result.state}[/{style}] in {result.seconds:.2f}s")


def print_rows(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """Rows as a table of `fields`, states in colour."""
    table = Table()
    for field in fields:
        table.add_column(field)
    for row in rows:
        values = []
        for field in fields:
            value = row.get(field)
            style = STATE_STYLE.get(value, "") if field == "state" else ""
            text = "-" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))
            values.append(f"[{style}]{text}[/{style}]" if style else text)
        table.add_row(*values)
    out.print(table)


def report_missed_deadline(run_id: str, decided: dict[str, Any]) -> None:
    """A deadline a run missed, as `airstep run` says it (its callback has been called)."""
    name = f" {decided['name']!r}" if decided.get("name") else ""
    err.print(f"[red]deadline{escape(name)} missed[/red]: {escape(run_id)} had not ended by {decided['deadline']}")
