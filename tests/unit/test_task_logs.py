"""Each try's log: its lines (print, stderr, logging, the traceback that failed it), masked, kept
apart from every other try's even when tries run at once in one process."""

from __future__ import annotations

import gc
import io
import json
import logging
import sys
import threading
import weakref

import pytest

from airstep.runtime import task_logs
from airstep.secrets_masker import RedactingStream, mask_secret, masked_output


@pytest.fixture
def kept(tmp_path):
    previous = task_logs.configure(task_logs.FileSink(tmp_path))
    yield tmp_path
    task_logs.configure(previous)


def key(task_id="t", try_number=1, map_index=-1):
    return task_logs.TryKey("etl", "manual__2026-12-05T09:00:00+00:00", task_id, map_index, try_number)


def test_a_try_keeps_what_it_prints_logs_and_fails_with_masked(kept, capsys):
    mask_secret("hunter2-password")
    with masked_output, task_logs.capturing(key()):
        print("connecting with hunter2-password")
        print("partial", end="")
        print("to stderr", file=sys.stderr)
        logging.getLogger("airflow.task").info("rows: %d", 3)  # Airflow's task logger logs INFO
        logging.getLogger("my.module").info("not shown")  # another logger keeps its level (WARNING)
        logging.getLogger("my.module").warning("shown")
        logging.getLogger("airstep").info("the platform's own line")  # airstep's service logger: not the task's
        try:
            raise ValueError("bad row")
        except ValueError as exc:
            task_logs.failed_with(exc)
    text = task_logs.read_file(kept, key())
    lines = text.splitlines()
    assert lines[0] == "connecting with ***"
    assert "to stderr" in lines and "partial" in lines  # an unfinished line is kept when the try ends
    assert any(line.endswith("INFO - rows: 3") and "{test_task_logs.py:" in line for line in lines)
    assert (
        "platform's own" not in text
        and "not shown" not in text
        and any(line.endswith("WARNING - shown") for line in lines)
    )
    assert "Task failed with exception" in lines and "ValueError: bad row" in lines
    assert "airstep/runtime" not in text  # the traceback shows the task's frames, not airstep's
    shown = capsys.readouterr()
    assert "connecting with ***" in shown.out and "hunter2" not in shown.out + shown.err  # still shown, masked


def test_tries_running_at_once_keep_their_own_lines(kept):
    barrier = threading.Barrier(4)

    def work(name):
        with masked_output, task_logs.capturing(key(name)):
            for i in range(50):
                barrier.wait() if i == 0 else None
                print(f"{name} {i}")

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(4):
        assert task_logs.read_file(kept, key(f"t{n}")).splitlines() == [f"t{n} {i}" for i in range(50)]
    with masked_output:
        print("outside any try")  # written through, kept nowhere
    assert sorted(p.name for p in kept.rglob("*.log")) == ["-1.1.log"] * 4


def test_cloudwatch_lines_carry_the_try_and_read_back_as_its_log():
    out = io.StringIO()
    previous = task_logs.configure(task_logs.CloudWatchSink(out))
    try:
        with masked_output, task_logs.capturing(key(try_number=2, map_index=3)):
            print("first\nsecond")
        with masked_output, task_logs.capturing(key(try_number=1, map_index=3)):
            print("an earlier try")
    finally:
        task_logs.configure(previous)
    events = [{"message": line} for line in out.getvalue().splitlines()] + [{"message": "START RequestId: x"}]
    parsed = json.loads(events[0]["message"])
    assert {k: parsed[k] for k in ("dag_id", "run_id", "task_id", "map_index", "try_number", "stream")} == {
        "dag_id": "etl",
        "run_id": "manual__2026-12-05T09:00:00+00:00",
        "task_id": "t",
        "map_index": 3,
        "try_number": 2,
        "stream": "stdout",
    }
    assert task_logs.read_events(events, key(try_number=2, map_index=3)) == "first\nsecond\n"
    assert task_logs.read_events(events, key(try_number=1, map_index=3)) == "an earlier try\n"
    assert task_logs.read_events(events, key(try_number=3, map_index=3)) is None


def test_a_run_id_is_a_safe_folder_name(tmp_path):
    path = task_logs.TryKey("d", "../../etc/x:y+z", "g.t", -1, 1).path(tmp_path)
    assert path.is_relative_to(tmp_path) and path.parent.parent.name == "..%2F..%2Fetc%2Fx%3Ay%2Bz"


def test_a_secret_written_in_two_pieces_is_masked_in_the_log(kept):
    mask_secret("split-secret-value")
    with masked_output, task_logs.capturing(key("split")):
        sys.stdout.write("token=split-sec")
        sys.stdout.write("ret-value and more\n")
    assert task_logs.read_file(kept, key("split")) == "token=*** and more\n"


def test_a_line_longer_than_a_cloudwatch_event_is_split_and_read_back_whole():
    out = io.StringIO()
    previous = task_logs.configure(task_logs.CloudWatchSink(out))
    try:
        with masked_output, task_logs.capturing(key("long")):
            print("x" * (task_logs.MAX_EVENT_CHARS * 2 + 5))
    finally:
        task_logs.configure(previous)
    events = out.getvalue().splitlines()
    assert len(events) == 3 and all(len(e.encode()) < 256_000 for e in events)
    assert task_logs.read_events([{"message": e} for e in events], key("long")) == "x" * (2 * 64_000 + 5) + "\n"


def test_a_warning_outside_any_try_is_still_shown(capsys, monkeypatch):
    with masked_output, task_logs.capturing(key("any")):
        pass  # the handler is installed by the first try
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if isinstance(h, task_logs._TryLogHandler)])
    logging.getLogger("some.library").warning("outside a try")  # as with no handler at all: on stderr
    assert "outside a try" in capsys.readouterr().err


def test_a_masked_stream_outlives_the_tries_that_put_it_in_sys():
    """print() in another thread may still be writing to the masked stream after the last try puts the
    original back (it holds sys.stdout by a borrowed reference): freeing it then crashed the process."""
    with masked_output:
        masked = weakref.ref(sys.stdout)
        assert isinstance(sys.stdout, RedactingStream)
    gc.collect()
    assert masked() is not None and sys.stdout is not masked()
    with masked_output:  # the same masked stream again, not one more per try
        assert sys.stdout is masked()


def test_stdout_and_stderr_stay_apart_when_both_are_one_stream(monkeypatch):
    """The CLI sends task output to stderr (stdout is for its own answer): both are then one stream."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    with masked_output:
        assert (sys.stdout.name, sys.stderr.name) == ("stdout", "stderr")
