"""Pools as a user runs them locally: `airstep pools set|list|delete`, tasks that share a pool never
hold more slots than it has (a task waiting for slots runs nothing), a task that will not run takes
none, and a pool a task cannot use fails it by name."""

import json
import threading
import time

import pytest
from test_cli import airstep

POOLED = """
import time
from datetime import datetime
from airflow.sdk import DAG, task

with DAG("pooled", schedule=None, start_date=datetime(2026, 1, 1)):
    @task(pool="db")
    def load(n):
        time.sleep(0.2)
        return n

    @task
    def parts():
        return [1, 2, 3, 4, 5]

    @task(pool="db")
    def part(x):
        time.sleep(0.2)
        return x

    @task(pool="db", pool_slots=2)
    def heavy():
        time.sleep(0.2)

    [load(i) for i in range(3)]
    part.expand(x=parts())
    heavy()
"""


def most_at_once(tasks, slots_of):
    """The most pool slots held at one moment, from the tries' start and end times."""
    edges = sorted(
        [(t["start"], slots_of(t)) for t in tasks] + [(t["end"], -slots_of(t)) for t in tasks],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same moment
    )
    held = peak = 0
    for _, change in edges:
        held += change
        peak = max(peak, held)
    return peak


@pytest.mark.parametrize("slots", [2, 3])
def test_tasks_sharing_a_pool_never_hold_more_slots_than_it_has(tmp_path, slots):
    (tmp_path / "pooled.py").write_text(POOLED)
    created = airstep("pools", "set", "db", str(slots), "the warehouse", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    proc = airstep("run", "pooled.py", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tasks = [t for t in json.loads(proc.stdout)["tasks"] if t["task_id"] != "parts"]
    assert len(tasks) == 9 and {t["state"] for t in tasks} == {"success"}
    assert most_at_once(tasks, lambda t: 2 if t["task_id"] == "heavy" else 1) == slots
    listed = json.loads(airstep("pools", "list", "--json", cwd=tmp_path).stdout)
    assert listed == [{"pool": "db", "slots": slots, "used": 0, "description": "the warehouse"}]  # all given back


def test_a_task_that_will_not_run_takes_no_slot(tmp_path):
    (tmp_path / "held.py").write_text(
        """
import time
from datetime import datetime
from airflow.sdk import DAG, task

with DAG("held", schedule=None, start_date=datetime(2026, 1, 1)):
    @task(pool="db")
    def slow():
        time.sleep(1.5)

    @task
    def broken():
        raise ValueError("no data")

    @task(pool="db")
    def after(x):
        return x

    slow()
    after(broken())
"""
    )
    airstep("pools", "set", "db", "1", cwd=tmp_path)
    proc = airstep("run", "held.py", "--json", cwd=tmp_path)
    tasks = {t["task_id"]: t for t in json.loads(proc.stdout)["tasks"]}
    assert tasks["after"]["state"] == "upstream_failed"
    assert tasks["after"]["end"] < tasks["slow"]["end"]  # settled while slow held the only slot


def test_a_pool_a_task_cannot_use_fails_it_by_name(tmp_path):
    (tmp_path / "pooled.py").write_text(POOLED)
    missing = airstep("run", "pooled.py", "--json", cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    errors = {t["task_id"]: t for t in json.loads(missing.stdout)["tasks"]}
    assert {errors[t]["state"] for t in ("load", "heavy", "part")} == {"failed"}
    shown = airstep("runs", "show", json.loads(missing.stdout)["run_id"], "--json", cwd=tmp_path)
    messages = {t["task_id"]: t["error"] for t in json.loads(shown.stdout)["tasks"]}
    assert messages["load"] == "pool 'db' does not exist: create it with `airstep pools set db SLOTS`"
    airstep("pools", "set", "db", "1", cwd=tmp_path)
    small = airstep("run", "pooled.py", "--json", cwd=tmp_path)
    states = {t["task_id"]: t["state"] for t in json.loads(small.stdout)["tasks"]}
    assert states["heavy"] == "failed" and states["load"] == "success"
    shown = airstep("runs", "show", json.loads(small.stdout)["run_id"], "--json", cwd=tmp_path)
    error = {t["task_id"]: t["error"] for t in json.loads(shown.stdout)["tasks"]}["heavy"]
    assert error == "the task needs 2 slot(s) of pool 'db', which has fewer: raise them with `airstep pools set`"


def test_pools_commands_refuse_what_they_cannot_do_by_name(tmp_path):
    assert airstep("pools", "list", cwd=tmp_path).stdout.startswith("no pools")
    bad = airstep("pools", "set", "bad\tname", "3", cwd=tmp_path)
    assert bad.returncode == 1 and "is not a pool airstep can limit" in bad.stderr
    default = airstep("pools", "set", "default_pool", "3", cwd=tmp_path)
    assert default.returncode == 1 and "not default_pool" in default.stderr
    zero = airstep("pools", "set", "db", "0", cwd=tmp_path)
    assert zero.returncode == 1 and "slots must be at least 1" in zero.stderr
    gone = airstep("pools", "delete", "db", cwd=tmp_path)
    assert gone.returncode == 1 and "there is no pool 'db'" in gone.stderr
    assert airstep("pools", "set", "db", "3", cwd=tmp_path).returncode == 0
    assert airstep("pools", "delete", "db", cwd=tmp_path).returncode == 0
    assert airstep("pools", "list", cwd=tmp_path).stdout.startswith("no pools")  # deleted stays deleted


def test_a_dag_naming_a_bad_pool_is_refused_where_it_says_so(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import DAG, task\n"
        "with DAG('bad', schedule=None, start_date=datetime(2026, 1, 1)):\n"
        "    @task(pool=3, pool_slots=1)\n    def t():\n        pass\n    t()\n"
    )
    proc = airstep("validate", "bad.py", cwd=tmp_path)
    assert proc.returncode == 1 and "bad.py:7:" in proc.stderr and "pool must be" in proc.stderr


def test_pools_in_a_deployed_environment(tmp_path):
    """`--stack`: pools live in the stack's table; a pooled run there holds and gives back its slots."""
    from typer.testing import CliRunner

    from airstep.runtime.run_tracker import execution_detail, status_event, track_and_count
    from airstep.runtime.store.pools import Claim
    from airstep_cli.main import app
    from airstep_local.engine import REGION
    from deployed import cli_stack, deployed_platform, quiesce, upload

    stack = ["--stack", "airstep-dev", "--region", REGION]
    with deployed_platform() as (engine, deployer, s3, _):
        cli_stack()
        cli = CliRunner()
        assert cli.invoke(app, ["pools", "set", "db", "2", "the warehouse", *stack]).exit_code == 0
        (outcome,) = deployer.handle(upload(s3, "dags/pooled.py", POOLED)[1])
        assert outcome["outcome"] == "deployed", outcome
        started = cli.invoke(app, ["trigger", "pooled", *stack])
        assert started.exit_code == 0, started.output
        quiesce(engine)
        run_id = started.output.split()[1].rstrip(":")
        record = next(iter(engine.store.find_runs(run_id)))
        description = engine.sfn.describe_execution(executionArn=record.execution_arn)
        track_and_count(status_event(execution_detail(description)), engine.store, engine.sfn, None)
        assert engine.store.get_run(record_key(record)).state == "success"
        listed = cli.invoke(app, ["pools", "list", "--json", *stack])
        assert json.loads(listed.stdout) == [{"pool": "db", "slots": 2, "used": 0, "description": "the warehouse"}]
        engine.store.take_claims((Claim("db", 1),), "pooled#other#0#load", record.execution_arn, "tag")
        busy = cli.invoke(app, ["pools", "delete", "db", *stack])
        assert busy.exit_code == 1 and "has slots in use" in busy.output


def record_key(record):
    from airstep.runtime.store import RunKey

    return RunKey(record.dag_id, record.run_id)


# -- no slot outlives its instance: crashes, skips before a try (the local engine, faults injected) ------


def crash_of(task_id, map_index=None):
    """Fail the runner's invocation for the task's run (as a Lambda that crashed)."""

    def rule(function, event):
        if event.get("action", "run") == "run" and event.get("task_id") == task_id:
            if map_index is None or event.get("map_index") == map_index:
                return "ResourceNotFoundException"
        return None

    return rule


def run_within(run_file, path, seconds=30):
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", run_file(path)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert "result" in box, "the run hung: an instance kept the slots another waits for"
    return box["result"]


@pytest.mark.parametrize(
    ("source", "crash"),
    [
        (  # a task whose try crashed, with no gated task after it: its failed state still frees its slot
            """
            from airstep import DAG, task

            with DAG("crash"):
                @task(pool="db")
                def a():
                    return 1

                @task(pool="db", trigger_rule="all_done")
                def b():
                    return 2

                a() >> b()
            """,
            crash_of("a"),
        ),
        (  # a mapped instance's crash frees its slot for the instances after it
            """
            from airstep import DAG, task

            with DAG("crash"):
                @task(pool="db")
                def part(x):
                    return x

                part.expand(x=[1, 2, 3])
            """,
            crash_of("part", map_index=1),
        ),
    ],
    ids=["task", "mapped-instance"],
)
def test_a_crashed_try_gives_its_slots_back(dag_file, run_file, engine, source, crash):
    from airstep_local.faults import Faults

    engine.store.set_pool("db", 1)
    engine.session.faults = Faults(invoke=crash)
    result = run_within(run_file, dag_file(source))
    assert "failed" in {ti.state for ti in result.tasks} and "success" in {ti.state for ti in result.tasks}
    assert engine.store.get_pool("db").used == 0 and engine.store.waiters("db") == []


def test_a_task_skipped_while_it_waits_for_slots_gives_them_back(dag_file, run_file, engine):
    path = dag_file(
        """
        import time
        from airstep import DAG, PythonOperator
        from airflow.providers.standard.operators.python import BranchPythonOperator

        def pick():
            time.sleep(0.5)
            return "x"

        with DAG("early"):
            holder = PythonOperator(task_id="holder", python_callable=lambda: time.sleep(1.5), pool="db")
            u = PythonOperator(task_id="u", python_callable=lambda: 1)
            b = BranchPythonOperator(task_id="b", python_callable=pick)
            t = PythonOperator(task_id="t", python_callable=lambda: 1, pool="db", trigger_rule="one_success")
            x = PythonOperator(task_id="x", python_callable=lambda: 1, pool="db")
            [u, b] >> t
            b >> x
        """
    )
    engine.store.set_pool("db", 1)
    result = run_within(run_file, path)
    states = {ti.task_id: ti.state for ti in result.tasks}
    assert (states["t"], states["x"], states["holder"]) == ("skipped", "success", "success")
    assert engine.store.get_pool("db").used == 0


# -- max_active_tasks: a run's own pool ---------------------------------------------------------------

LIMITED = """
import time
from datetime import datetime
from airflow.sdk import DAG, task

with DAG("limited", schedule=None, start_date=datetime(2026, 1, 1), max_active_tasks={limit}):
    @task
    def load(n):
        time.sleep(0.3)
        return n

    @task
    def parts():
        return [1, 2, 3, 4]

    @task
    def part(x):
        time.sleep(0.3)
        return x

    @task(pool="db")
    def to_db(n):
        time.sleep(0.3)

    [load(i) for i in range(4)]
    part.expand(x=parts())
    [to_db(i) for i in range(3)]
"""


@pytest.mark.parametrize("limit", [1, 3])
def test_max_active_tasks_limits_the_instances_of_a_run_running_at_once(tmp_path, limit):
    """Every task instance of the run takes one of its max_active_tasks slots (a mapped instance
    too) before its task's pool, and gives both back when it ends; the run's own pool goes with it."""
    (tmp_path / "limited.py").write_text(LIMITED.format(limit=limit))
    airstep("pools", "set", "db", "1", cwd=tmp_path)
    proc = airstep("run", "limited.py", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tasks = json.loads(proc.stdout)["tasks"]
    assert len(tasks) == 12 and {t["state"] for t in tasks} == {"success"}
    assert most_at_once(tasks, lambda t: 1) == limit
    assert most_at_once([t for t in tasks if t["task_id"].startswith("to_db")], lambda t: 1) == 1
    listed = json.loads(airstep("pools", "list", "--json", cwd=tmp_path).stdout)
    assert listed == [{"pool": "db", "slots": 1, "used": 0, "description": ""}]  # a run's pool is not listed


LOST_IN_A_MISSING_POOL = """
from airstep import DAG, task

with DAG("crashy", max_active_tasks=1):
    @task
    def a():
        return 1

    @task(pool="nowhere")
    def lost():
        return 2

    @task
    def part(x):
        return x

    a()
    lost()
    part.expand(x=[1, 2, 3])
"""


def test_max_active_tasks_survives_a_crashed_try_and_a_missing_pool(dag_file, run_file, engine):
    """A try that crashed, and a task whose pool does not exist, give their run slot back: the
    tasks after them still run (the run would hang otherwise)."""
    path = dag_file(LOST_IN_A_MISSING_POOL)
    from airstep_local.faults import Faults

    engine.session.faults = Faults(invoke=crash_of("a"))
    result = run_within(run_file, path)
    states = {(ti.task_id, ti.map_index): ti.state for ti in result.tasks}
    assert states == {
        ("a", -1): "failed",
        ("lost", -1): "failed",
        ("part", 0): "success",
        ("part", 1): "success",
        ("part", 2): "success",
    }
    errors = {ti.task_id: ti.error for ti in result.tasks}
    assert errors["lost"] == "pool 'nowhere' does not exist: create it with `airstep pools set nowhere SLOTS`"
    assert engine.store.list_pools(runs=True) == []


def test_a_task_that_waited_for_its_run_slot_and_found_its_pool_missing_fails_saying_so(dag_file, run_file, engine):
    """The refusal of a waiter the promoter starts (no record of it yet) is the task's error, as the
    refusal at its own acquire is; not "never started". The hook makes `lost` wait while `a` runs."""
    path = dag_file(LOST_IN_A_MISSING_POOL)
    from airstep.contract import DagRun, run_pool
    from airstep_local.faults import Faults

    a_holds_the_slot = threading.Event()

    def lost_waits_while_a_runs(function, event):
        action, task_id = event.get("action", "run"), event.get("task_id")
        if action == "acquire" and task_id == "lost":
            assert a_holds_the_slot.wait(10), "a never ran"
        if action == "run" and task_id == "a" and not a_holds_the_slot.is_set():
            a_holds_the_slot.set()
            run = DagRun.from_input(event["ctx"]["run"])
            pool = run_pool(run.dag_id, run.run_id, run.clear_number)
            deadline = time.monotonic() + 10
            while not engine.store.waiters(pool) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert engine.store.waiters(pool), "lost never waited for the run's slot"
        return None

    engine.session.faults = Faults(invoke=lost_waits_while_a_runs)
    result = run_within(run_file, path)
    assert {(ti.task_id, ti.map_index): (ti.state, ti.error) for ti in result.tasks} == {
        ("a", -1): ("success", None),
        ("lost", -1): ("failed", "pool 'nowhere' does not exist: create it with `airstep pools set nowhere SLOTS`"),
        **{("part", i): ("success", None) for i in range(3)},
    }


def test_max_active_tasks_is_checked_where_it_is_set(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import DAG, task\n\n"
        "with DAG('bad', schedule=None, start_date=datetime(2026, 1, 1),\n"
        "         max_active_tasks=0):\n"
        "    @task(pool='max_active_tasks:mine')\n    def t():\n        pass\n    t()\n"
    )
    proc = airstep("compile", "bad.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bad.py:4: max_active_tasks must be an integer from 1 to 1,000, got 0" in proc.stderr
    (tmp_path / "bad.py").write_text(
        (tmp_path / "bad.py").read_text().replace("max_active_tasks=0", "max_active_tasks=2")
    )
    proc = airstep("compile", "bad.py", cwd=tmp_path)
    assert (
        proc.returncode == 1 and "bad.py:9:" in proc.stderr and "'max_active_tasks:' are airstep's own" in proc.stderr
    )
    refused = airstep("pools", "set", "max_active_tasks:mine", "3", cwd=tmp_path)
    assert refused.returncode == 1 and "not starting 'max_active_tasks:'" in refused.stderr
    refused = airstep("pools", "delete", "max_active_tasks:mine", cwd=tmp_path)
    assert refused.returncode == 1 and "is a run's own pool" in refused.stderr


# -- waiters and releases under load and retries (the real store and Step Functions, in moto) ----------


def dead_token(n):
    return f"token-of-a-stopped-execution-{n}"  # Step Functions refuses it: its wait is over


def test_a_long_queue_of_dead_waiters_is_worked_through(engine):
    """A stopped run can leave hundreds of waiters behind: the slot that comes back passes through
    every one of them (each takes it, finds its wait over, gives it back) and ends free."""
    from airstep.runtime import pooling
    from airstep.runtime.store.pools import Claim

    store, db, arn = engine.store, Claim("db", 1), "arn:aws:states:us-east-1:123456789012:execution:m:e"
    store.set_pool("db", 1)
    store.take_claims((db,), "live#r#0#t", arn, "live")
    for n in range(250):
        store.add_waiter("db", (db,), f"{n:04d}", f"dead#r#0#t[{n}]", dead_token(n), arn)
    pooling.release(store, engine.sfn, ["db"], "live#r#0#t")
    assert store.get_pool("db").used == 0 and store.waiters("db") == []


def test_a_waiter_for_two_pools_holds_nothing_while_it_waits(engine):
    """An instance of a DAG with max_active_tasks whose task's pool is full waits in that pool's
    queue without a slot of its run: the run's other tasks go on."""
    from airstep.runtime import pooling
    from airstep.runtime.store.pools import Claim

    store, arn = engine.store, "arn:aws:states:us-east-1:123456789012:execution:m:e"
    own, db = Claim("max_active_tasks:d:0:r", 1, 1), Claim("db", 1)
    store.set_pool("db", 1)
    store.take_claims((db,), "other#r#0#t", arn, "other")  # db is full
    store.create_run_pool(own.pool, 1, arn)
    store.add_waiter(own.pool, (own, db), "0001", "d#r#0#t", dead_token(1), arn)
    pooling.wake(store, engine.sfn, [own.pool])
    assert [w.holder for w in store.waiters("db")] == ["d#r#0#t"] and store.waiters(own.pool) == []
    assert store.get_pool(own.pool).used == 0  # moved to db's queue holding nothing
    pooling.release(store, engine.sfn, ["db"], "other#r#0#t")  # db frees: it takes both; its wait is over
    assert store.get_pool(own.pool).used == 0 and store.get_pool("db").used == 0
    assert store.waiters("db") == []


def test_slots_a_retried_acquire_runs_on_are_not_given_back_by_the_first_attempt(engine):
    """A retried acquire that found the instance's slots held (its first attempt took them, then
    its answer was lost) makes them its own: the first attempt, finding its wait over, gives back
    only what is still its own."""
    from airstep.runtime.store.pools import Claim

    store, db, arn = engine.store, Claim("db", 1), "arn:aws:states:us-east-1:123456789012:execution:m:e"
    store.set_pool("db", 1)
    store.take_claims((db,), "d#r#0#t", arn, "first")
    assert store.adopt("db", "d#r#0#t", "retry")
    assert not store.free_pool_slots("db", "d#r#0#t", "first")
    assert store.get_pool("db").used == 1
    assert store.free_pool_slots("db", "d#r#0#t")  # the instance's end gives them back


def test_max_active_tasks_beyond_what_a_run_pool_item_holds_is_refused(tmp_path):
    long_id = "t" * 200
    (tmp_path / "wide.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import DAG, task\n\n"
        f"with DAG('{long_id}', schedule=None, start_date=datetime(2026, 1, 1), max_active_tasks=1000):\n"
        f"    @task(task_id='{long_id}')\n    def t():\n        pass\n    t()\n"
    )
    proc = airstep("compile", "wide.py", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "wide.py:4: max_active_tasks=1000 is more than a run's slots can hold" in proc.stderr
    assert "(at most 648;" in proc.stderr
