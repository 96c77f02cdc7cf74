"""What the UI shows, read from where runs are recorded: the local history of a folder (read from its
file, no engine), or a deployed stack's table, models and logs (with the caller's credentials)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from airstep.model import DagModel
from airstep.runtime import task_logs
from airstep.runtime.audit import AuditAction, AuditRecord, CloudWatchAuditLog, FileAuditLog, Via
from airstep.runtime.store import DagRecord, ImportErrorRecord, RunKey, RunRecord, TaskInstance
from airstep.runtime.store.deadline_alerts import DeadlineRecord, deadline_record
from airstep.runtime.store.schema import DAG_PREFIX, DEADLINE_PREFIX, RUN_SK, run_pk, ti_prefix
from airstep.runtime.usage import LambdaUsage, carried_usage
from airstep_cli.audit import LOCAL_AUDIT, VIA_ENV, record_change
from airstep_cli.prices import DEFAULT_REGION


class Records(Protocol):
    """Read-only access to an environment's DAGs and runs, and the region whose prices they cost."""

    @property
    def pricing_region(self) -> str: ...
    def dags(self) -> list[DagRecord]: ...
    def import_errors(self) -> list[ImportErrorRecord]: ...
    def runs(self, dag_id: str, limit: int) -> list[RunRecord]: ...
    def run(self, dag_id: str, run_id: str) -> RunRecord | None: ...
    def instances(self, dag_id: str, run_id: str, with_tries: bool = False) -> list[TaskInstance]: ...
    def lambda_usage(self, run: RunRecord) -> LambdaUsage: ...
    def deadlines(self, run: RunRecord) -> list[DeadlineRecord]: ...
    def model(self, dag: DagRecord) -> DagModel | None: ...
    def log(self, run: RunRecord, key: task_logs.TryKey) -> str | None: ...
    def trigger(self, dag: DagRecord, conf: dict[str, Any]) -> dict[str, Any]: ...
    def audit(self, dag_id: str, since: datetime) -> list[AuditRecord]: ...


class LocalRecords:
    """A folder's local history (`.airstep/`), read again whenever its file changes."""

    pricing_region = DEFAULT_REGION  # a local run is priced as if it ran there

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._items: list[dict[str, Any]] = []

    def _load(self) -> list[dict[str, Any]]:
        path = self.folder / "local-metadata.json"
        with self._lock:
            try:
                found = path.stat()
                version = (found.st_ino, found.st_mtime_ns, found.st_size)
                if version != self._seen:
                    self._items = json.loads(path.read_text(encoding="utf-8"))["items"]
                    self._seen = version
            except FileNotFoundError:
                self._items, self._seen = [], None
            except ValueError:  # replaced while read: what was read before stands, until the next request
                self._seen = None
            return self._items

    def dags(self) -> list[DagRecord]:
        found = [
            DagRecord.from_dict(json.loads(i["record"]["S"]))
            for i in self._load()
            if i["pk"]["S"].startswith(DAG_PREFIX) and "record" in i
        ]
        return sorted(found, key=lambda d: d.dag_id)

    def import_errors(self) -> list[ImportErrorRecord]:
        return []  # a local run refuses a broken file before anything is recorded

    def runs(self, dag_id: str, limit: int) -> list[RunRecord]:
        found = [
            RunRecord.from_item(i)
            for i in self._load()
            if i["sk"]["S"] == RUN_SK and i.get("dag_id", {}).get("S") == dag_id
        ]
        return sorted(found, key=lambda r: r.start_date or "", reverse=True)[:limit]

    def run(self, dag_id: str, run_id: str) -> RunRecord | None:
        pk = run_pk(dag_id, run_id)
        return next(
            (RunRecord.from_item(i) for i in self._load() if i["pk"]["S"] == pk and i["sk"]["S"] == RUN_SK), None
        )

    def instances(self, dag_id: str, run_id: str, with_tries: bool = False) -> list[TaskInstance]:
        """The run's task instances (with their tries: the file has them anyway)."""
        return [TaskInstance.from_item(i) for i in self._of_run(dag_id, run_id, ti_prefix())]

    def lambda_usage(self, run: RunRecord) -> LambdaUsage:
        return carried_usage(self._of_run(run.dag_id, run.run_id, ""))

    def deadlines(self, run: RunRecord) -> list[DeadlineRecord]:
        found = [deadline_record(i) for i in self._of_run(run.dag_id, run.run_id, DEADLINE_PREFIX)]
        return sorted(found, key=lambda d: d.alert)

    def _of_run(self, dag_id: str, run_id: str, prefix: str) -> list[dict[str, Any]]:
        pk = run_pk(dag_id, run_id)
        return [i for i in self._load() if i["pk"]["S"] == pk and i["sk"]["S"].startswith(prefix)]

    def model(self, dag: DagRecord) -> DagModel | None:
        if dag.model is None:
            return None
        path = self.folder / "models" / dag.model.split("/models/", 1)[-1]
        return DagModel.from_json(path.read_text(encoding="utf-8")) if path.exists() else None

    def log(self, run: RunRecord, key: task_logs.TryKey) -> str | None:
        return task_logs.read_file(self.folder / "logs", key)

    def trigger(self, dag: DagRecord, conf: dict[str, Any]) -> dict[str, Any]:
        """`airstep run` of the DAG's file with `conf`, in the background in the history's folder (the
        run shows once it has ended: a local run writes the history then); its output is kept in
        .airstep/ui-runs/."""
        outputs = self.folder / "ui-runs"
        outputs.mkdir(parents=True, exist_ok=True)
        output = outputs / f"{dag.dag_id}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        command = [sys.executable, "-m", "airstep_cli.main", "run", "--dag-id", dag.dag_id]
        command += ["--conf", json.dumps(conf), "--", dag.file]
        with output.open("w", encoding="utf-8") as log:
            subprocess.Popen(  # noqa: S603 - our own command, its arguments a list
                command,
                env={**os.environ, VIA_ENV: Via.UI.value},  # its audit record says the UI started it
                cwd=self.folder.resolve().parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return {"dag_id": dag.dag_id, "run_id": None, "state": "starting", "conf": conf, "output": str(output)}

    def audit(self, dag_id: str, since: datetime) -> list[AuditRecord]:
        return FileAuditLog(self.folder / LOCAL_AUDIT.name).read(dag_id, since)


class StackRecords:
    """A deployed stack's records, models and logs."""

    def __init__(self, target: Any, region: str | None) -> None:
        self.target = target
        self.region = region

    def dags(self) -> list[DagRecord]:
        return sorted(self.target.store.list_dags(), key=lambda d: d.dag_id)

    @property
    def pricing_region(self) -> str:
        return str(self.target.region)

    def import_errors(self) -> list[ImportErrorRecord]:
        return list(self.target.store.list_import_errors())

    def runs(self, dag_id: str, limit: int) -> list[RunRecord]:
        return list(self.target.store.runs_of_dag(dag_id, limit))

    def run(self, dag_id: str, run_id: str) -> RunRecord | None:
        record: RunRecord | None = self.target.store.get_run(RunKey(dag_id, run_id))
        return record

    def instances(self, dag_id: str, run_id: str, with_tries: bool = False) -> list[TaskInstance]:
        return list(self.target.store.task_instances(RunKey(dag_id, run_id), with_tries=with_tries))

    def lambda_usage(self, run: RunRecord) -> LambdaUsage:
        usage: LambdaUsage = self.target.store.lambda_usage(RunKey(run.dag_id, run.run_id))
        return usage

    def deadlines(self, run: RunRecord) -> list[DeadlineRecord]:
        return list(self.target.store.deadlines(RunKey(run.dag_id, run.run_id)))

    def model(self, dag: DagRecord) -> DagModel | None:
        from airstep_cli.metadata import deployed_model

        return deployed_model(dag, self.region) if dag.model else None

    def log(self, run: RunRecord, key: task_logs.TryKey) -> str | None:
        from airstep_cli.logs import cloudwatch_log

        return cloudwatch_log(self.target, run, key)

    def trigger(self, dag: DagRecord, conf: dict[str, Any]) -> dict[str, Any]:
        """A manual run of the deployed DAG, admitted as `airstep trigger` admits it."""
        from airstep_cli.run_control import start_manual_run

        run, admitted = start_manual_run(self.target, dag, conf, None)
        record_change(
            self.target, AuditAction.TRIGGER, dag.dag_id, run.run_id, admitted.state.value, {"conf": conf}, Via.UI
        )
        return {"dag_id": dag.dag_id, "run_id": run.run_id, "state": admitted.state.value, "conf": conf}

    def audit(self, dag_id: str, since: datetime) -> list[AuditRecord]:
        if not self.target.audit_group:  # a stack deployed before the audit trail
            return []
        return CloudWatchAuditLog(self.target.logs, self.target.audit_group).read(dag_id, since)
