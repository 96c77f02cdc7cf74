"""The audit trail's records: what they keep (secrets masked), where they go (a local file, a CloudWatch
Logs group on moto) and how they are read back (by DAG, since a moment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from airstep.runtime.audit import AuditAction, AuditRecord, CloudWatchAuditLog, FileAuditLog, Via, masked
from airstep.secrets_masker import mask_secret
from airstep_cli.audit import parse_since
from airstep_cli.errors import UserError


def record(at: str, dag_id: str | None = "etl", action: AuditAction = AuditAction.TRIGGER, **extra) -> AuditRecord:
    return AuditRecord(at, action, "local:ana", Via.CLI, dag_id, **extra)


def test_arguments_keep_no_secret():
    mask_secret("s3cr3t-token-value")
    conf = {"password": "hunter22", "nested": {"api_key": "k", "note": "uses s3cr3t-token-value"}, "n": 3}
    assert masked(conf) == {"password": "***", "nested": {"api_key": "***", "note": "uses ***"}, "n": 3}
    assert masked({"rows": ["a", {"token": "t"}]}) == {"rows": ["a", {"token": "***"}]}


def test_a_record_round_trips_and_a_huge_conf_is_cut_not_refused():
    kept = record("2026-12-05T10:00:00.000+00:00", run_id="manual__1", outcome="running", arguments={"conf": {"a": 1}})
    assert AuditRecord.from_json(kept.to_json()) == kept
    huge = record("2026-12-05T10:00:00.000+00:00", arguments={"conf": {"blob": "x" * 300_000}})
    text = huge.to_json()
    assert len(text.encode()) < 256_000 and AuditRecord.from_json(text).arguments["truncated"].startswith('{"action"')


def test_the_local_file_is_appended_and_read_by_dag_and_moment(tmp_path):
    log = FileAuditLog(tmp_path / ".airstep" / "audit.jsonl")
    assert log.read() == []
    log.append(record("2026-12-05T10:00:00.000+00:00"))
    log.append(record("2026-12-05T11:00:00.000+01:00", dag_id="other"))
    log.append(record("2026-12-05T10:30:00.000+00:00", action=AuditAction.CLEAR))
    assert [r.action for r in log.read("etl")] == [AuditAction.TRIGGER, AuditAction.CLEAR]
    assert [r.dag_id for r in log.read()] == ["etl", "other", "etl"]  # by moment (11:00+01:00 is 10:00 UTC)
    since = datetime(2026, 12, 5, 10, 0, 1, tzinfo=UTC)
    assert [r.action for r in log.read(since=since)] == [AuditAction.CLEAR]
    assert len((tmp_path / ".airstep" / "audit.jsonl").read_text().splitlines()) == 3


@mock_aws
def test_cloudwatch_records_go_to_the_writers_stream_of_the_day_and_read_back_in_order():
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="/airstep/dev/audit")
    log = CloudWatchAuditLog(logs, "/airstep/dev/audit", "compile-dags")
    now = datetime.now(UTC)
    first, second = (now - timedelta(minutes=2)).isoformat(), (now - timedelta(minutes=1)).isoformat()
    log.append(record(second, action=AuditAction.UPLOAD))  # creates its stream
    log.append(record(first, dag_id="other"))
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/airstep/dev/audit")["logStreams"]]
    assert streams == [f"compile-dags/{now:%Y/%m/%d}"] or streams == [
        f"compile-dags/{(now - timedelta(minutes=2)):%Y/%m/%d}",
        f"compile-dags/{now:%Y/%m/%d}",
    ]
    assert [r.dag_id for r in log.read()] == ["other", "etl"]  # oldest first
    assert [r.action for r in log.read("etl")] == [AuditAction.UPLOAD]
    assert log.read(since=now) == []
    logs.put_log_events(  # a line that is not an audit record is passed over
        logGroupName="/airstep/dev/audit",
        logStreamName=streams[-1],
        logEvents=[{"timestamp": int(now.timestamp() * 1000), "message": "not json"}],
    )
    assert len(log.read()) == 2


def test_since_takes_a_date_a_moment_or_an_age():
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T06:00:00+02:00", now) == datetime(2026, 12, 1, 4, tzinfo=UTC)
    assert parse_since(None, now) is None
    with pytest.raises(UserError, match="--since: 'last week' is neither"):
        parse_since("last week", now)
