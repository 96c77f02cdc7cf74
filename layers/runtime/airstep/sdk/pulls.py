"""The task ids an operator names in `xcom_pull` calls of its templates and its Python code.

A task's code is handed the XComs of its upstream tasks only (it never reads run records); the ones
it names this way among its other ancestors are handed too (TaskModel.pulls), so that a template
such as `{{ ti.xcom_pull('create_job_flow') }}` two tasks downstream pulls as in Airflow."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterator
from typing import Any

_CALL = re.compile(r"xcom_pull\s*\(")
_IDS = r"""(\[[^\]]*\]|\([^)]*\)|'[^']*'|"[^"]*")"""
_NAMED = re.compile(r"\btask_ids\s*=\s*" + _IDS)
_FIRST = re.compile(r"\s*" + _IDS)
_LITERAL = re.compile(r"""'([^']*)'|"([^"]*)\"""")
_ARGUMENTS = 400  # how far past `xcom_pull(` its arguments are looked for


def pulled_task_ids(op: Any) -> frozenset[str]:
    """The literal task ids in the `xcom_pull` calls of the operator's template fields and of its
    Python callable's source."""
    texts = [text for name in op.template_fields for text in _strings(getattr(op, name, None))]
    named = frozenset(task_id for text in texts for task_id in _named_in(text))
    function = getattr(op, "python_callable", None)
    if function is None:
        return named
    try:
        return named | _named_in_code(function)
    except TypeError:  # an unhashable callable object
        return named | _named_in_code.__wrapped__(function)


@functools.lru_cache(maxsize=1024)  # (a DAG of thousands of tasks often calls the same function)
def _named_in_code(function: Any) -> frozenset[str]:
    try:
        return frozenset(_named_in(inspect.getsource(function)))
    except (OSError, TypeError):  # no source (a builtin, a callable made at run time)
        return frozenset()


def _named_in(text: str) -> Iterator[str]:
    for call in _CALL.finditer(text):
        arguments = _call_arguments(text[call.end() : call.end() + _ARGUMENTS])
        found = _NAMED.search(arguments) or _FIRST.match(arguments)
        if found is not None:
            for single, double in _LITERAL.findall(found.group(1)):
                yield single or double


def _call_arguments(text: str) -> str:
    """The arguments of a call whose `(` came just before `text`: up to its closing `)`."""
    depth, quote = 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return text[:index]
            depth -= 1
    return text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
