"""Branching and short-circuiting, as Airflow 3.3's standard provider does them.

A branching task names the task ids to follow; its direct downstream tasks that are neither followed
nor downstream of a followed task are skipped, whatever their trigger rules. A short-circuiting task
whose condition is falsy skips its direct downstream tasks, or every task downstream of it with
`ignore_downstream_trigger_rules=True` (the default), teardowns excepted. The task itself succeeds; what it skipped is
pushed as the XCom `skipmixin_key`, and the skip is raised as DownstreamTasksSkipped for the task
runner to record (airstep.runtime.executor); a mapped instance's try goes on and returns its value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airstep.errors import AirflowException, DownstreamTasksSkipped
from airstep.sdk.baseoperator import BaseOperator
from airstep.sdk.operators.python import PythonOperator
from airstep.states import TaskState

XCOM_SKIPMIXIN_KEY = "skipmixin_key"
XCOM_SKIPMIXIN_SKIPPED = TaskState.SKIPPED.value  # Airflow's key in that XCom: the state's name
XCOM_SKIPMIXIN_FOLLOWED = "followed"


class SkipMixin:
    """Airflow's SkipMixin: `skip` and `skip_all_except` for operators that skip downstream tasks."""

    def skip(self, ti: Any, tasks: Iterable[BaseOperator]) -> None:
        task_ids = [t.task_id for t in tasks if isinstance(t, BaseOperator)]
        if task_ids:
            ti.xcom_push(key=XCOM_SKIPMIXIN_KEY, value={XCOM_SKIPMIXIN_SKIPPED: task_ids})
            _skip(ti, task_ids)

    def skip_all_except(self, ti: Any, branch_task_ids: None | str | Iterable[str]) -> None:
        task: BaseOperator = self  # type: ignore[assignment]
        followed = _branch_ids(branch_task_ids)
        invalid = followed - set(task.dag.task_dict)
        if invalid:
            raise AirflowException(
                f"'branch_task_ids' must contain only valid task_ids. Invalid tasks found: {invalid}."
            )
        downstream = task.get_direct_relatives()
        if not downstream:
            return
        for task_id in list(followed):  # a join downstream of a followed task is followed too
            followed |= task.dag.task_dict[task_id].get_flat_relative_ids()
        ti.xcom_push(
            key=XCOM_SKIPMIXIN_KEY,
            value={XCOM_SKIPMIXIN_FOLLOWED: [t.task_id for t in downstream if t.task_id in followed]},
        )
        skipped = [t.task_id for t in downstream if t.task_id not in followed]
        if skipped:
            _skip(ti, skipped)


def _skip(ti: Any, task_ids: list[str]) -> None:
    """Hand the skips to the task runner: raised, or for a mapped instance (which, as in Airflow,
    goes on to return its value) kept on its task instance."""
    if getattr(ti, "map_index", -1) < 0:
        raise DownstreamTasksSkipped(task_ids)
    ti.skipped.extend(task_ids)


def _branch_ids(branch_task_ids: None | str | Iterable[str]) -> set[str]:
    if branch_task_ids is None:
        return set()
    if isinstance(branch_task_ids, str):
        return {branch_task_ids}
    if isinstance(branch_task_ids, Iterable):
        ids = set(branch_task_ids)
        invalid = {(i, type(i).__name__) for i in ids if not isinstance(i, str)}
        if invalid:
            raise AirflowException(
                "Unable to branch to the specified tasks. The branching function returned invalid "
                f"'branch_task_ids': {invalid}."
            )
        return ids
    raise AirflowException(
        "'branch_task_ids' must be either None, a task ID, or an Iterable of IDs, "
        f"but got {type(branch_task_ids).__name__!r}."
    )


class BranchMixIn(SkipMixin):
    """Follows the branches a task chose; a task group id stands for the group's root tasks."""

    def do_branch(self, context: dict[str, Any], branches: str | Iterable[str] | None) -> Any:
        if branches is None:
            self.skip_all_except(context["ti"], None)
        else:
            self.skip_all_except(context["ti"], list(self._expand_task_groups(branches)))
        return branches

    def _expand_task_groups(self, branches: str | Iterable[str]) -> Iterable[str]:
        dag = self.dag  # type: ignore[attr-defined]
        if isinstance(branches, str) or not isinstance(branches, Iterable):
            branches = [branches]  # type: ignore[list-item] - a non-string is refused by skip_all_except
        for branch in branches:
            if branch in dag.task_groups:
                yield from (root.task_id for root in dag.task_groups[branch].roots)
            else:
                yield branch


class BaseBranchOperator(BaseOperator, BranchMixIn):
    """Subclass and implement `choose_branch(context)` to return the task id(s) to follow."""

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str] | None:
        raise NotImplementedError

    def execute(self, context: dict[str, Any]) -> Any:
        return self.do_branch(context, self.choose_branch(context))


class BranchPythonOperator(BaseBranchOperator, PythonOperator):
    """Follows the task id(s) its callable returns (None: skip every direct downstream task)."""

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str] | None:
        return PythonOperator.execute(self, context)


class ShortCircuitOperator(PythonOperator, SkipMixin):
    """Skips downstream tasks when its callable returns a falsy value."""

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: dict[str, Any]) -> Any:
        condition = super().execute(context)
        if condition or not self.downstream_task_ids:
            return condition
        relatives = self.get_flat_relatives() if self.ignore_downstream_trigger_rules else self.get_direct_relatives()
        self.skip(context["ti"], [t for t in relatives if not t.is_teardown])
        return condition
