"""The compile function's audit records: each S3 upload and deletion says what became of its own
object version, whatever order S3 delivers the events in and whichever event's deploy took the
change (one deploy takes every change under dags/)."""

from __future__ import annotations

import pytest

from airstep.runtime.audit import CloudWatchAuditLog
from deployed import AUDIT_LOG_GROUP, UPLOADER, deployed_platform, removal, upload


def dag(dag_id: str, note: str = "") -> str:
    return f"""
from datetime import datetime
from airstep import DAG, task
from helpers_mod import LABEL

with DAG({dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1)):
    @task
    def work():
        return LABEL + {note!r}

    work()
"""


@pytest.fixture
def platform():
    with deployed_platform() as parts:
        yield parts


def trail(engine):
    records = CloudWatchAuditLog(engine.session.client("logs"), AUDIT_LOG_GROUP).read()
    return [(r.action.value, r.file.rsplit("/", 1)[1], r.version_id, r.dag_id, r.outcome) for r in records]


def test_each_upload_and_deletion_says_what_became_of_its_version(platform):
    engine, deployer, s3, _ = platform
    _, helper = upload(s3, "dags/helpers_mod.py", "LABEL = 'a'\n")
    # a sync: two files land, then their events come; the first event's deploy takes both
    a1, event_a = upload(s3, "dags/a.py", dag("dag_a"))
    b1, event_b = upload(s3, "dags/b.py", dag("dag_b"))
    assert {o["file"].rsplit("/", 1)[1] for o in deployer.handle(event_a)} == {"a.py", "b.py"}
    assert deployer.handle(event_b) == []  # nothing left to do: b's record still says it was deployed
    deployer.handle(helper)  # its event came last: the DAG files were already deployed with it

    # two quick uploads of a file: the first's event finds the second already in S3
    a2, event_a2 = upload(s3, "dags/a.py", dag("dag_a", "v2"))
    a3, event_a3 = upload(s3, "dags/a.py", dag("dag_a", "v3"))
    deployer.handle(event_a2)
    deployer.handle(event_a3)

    # a helper changes: the DAG files that import it are deployed again, under the helper's record
    _, helper2 = upload(s3, "dags/helpers_mod.py", "LABEL = 'b'\n")
    deployer.handle(helper2)

    # a recursive delete: the first deletion's deploy removes both
    deleted_a, deleted_b = removal(s3, "dags/a.py"), removal(s3, "dags/b.py")
    deployer.handle(deleted_a)
    deployer.handle(deleted_b)

    assert trail(engine) == [
        ("upload", "a.py", a1, "dag_a", "deployed"),
        ("upload", "b.py", b1, "dag_b", "deployed"),
        ("upload", "helpers_mod.py", helper["Records"][0]["s3"]["object"]["versionId"], None, "not_a_dag_file"),
        ("upload", "a.py", a2, "dag_a", "superseded"),
        ("upload", "a.py", a3, "dag_a", "deployed"),
        ("upload", "helpers_mod.py", helper2["Records"][0]["s3"]["object"]["versionId"], None, "not_a_dag_file"),
        ("delete", "a.py", None, "dag_a", "removed"),
        ("delete", "b.py", None, "dag_b", "removed"),
    ]
    records = CloudWatchAuditLog(engine.session.client("logs"), AUDIT_LOG_GROUP).read()
    assert {r.principal for r in records} == {UPLOADER}
    assert records[0].arguments["reconciled"] == ["s3://airstep-dev-dags/dags/b.py"]  # what else it deployed
    assert records[5].arguments["reconciled"] == ["s3://airstep-dev-dags/dags/a.py", "s3://airstep-dev-dags/dags/b.py"]


def test_a_record_that_cannot_be_written_never_undoes_or_repeats_the_deploy(platform, monkeypatch):
    engine, deployer, s3, _ = platform
    _, helper = upload(s3, "dags/helpers_mod.py", "LABEL = 'a'\n")
    deployer.handle(helper)

    def refuse(record):
        raise RuntimeError("throttled")

    monkeypatch.setattr(deployer.audit, "append", refuse)
    _, event = upload(s3, "dags/a.py", dag("dag_a"))
    (outcome,) = deployer.handle(event)  # no exception: Lambda would retry the event, finding nothing to do
    assert outcome["outcome"] == "deployed" and engine.store.get_dag("dag_a") is not None
