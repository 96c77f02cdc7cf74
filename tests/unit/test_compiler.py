import dataclasses
import json
import os
import subprocess
import sys
from datetime import timedelta
from unittest.mock import ANY

import pytest

from airstep import DAG, EmptyOperator, chain, task
from airstep.model import DagModel
from airstep_compiler import CompileError, CompileOptions, DagSource, compile_dag
from airstep_compiler.compile import state_name
from airstep_compiler.states import PLATFORM_RETRIERS, RUNNER_RETRIER, UNCAUGHT_RUNNER_RETRIER
from helpers import EXAMPLES, ROOT, load_model

GOLDEN = ROOT / "tests" / "golden"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))


def compile_example(path, **options):
    """An example compiled as if deployed from examples/dags/ (nothing in it depends on this checkout's path)."""
    model, source = load_model(path)
    model = dataclasses.replace(model, file=f"examples/dags/{path.name}")
    return compile_dag(model, DagSource(model.file, source.version), CompileOptions(**options))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_golden_definitions(path):
    compiled = compile_example(path)
    golden = GOLDEN / f"{compiled.dag_id}.asl.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(compiled.pretty_json())
    assert compiled.pretty_json() == golden.read_text(), "run with UPDATE_GOLDEN=1 after an intended change"


def test_recompile_in_a_fresh_process_is_byte_identical():
    script = (
        "import sys; sys.path.insert(0, 'tests'); from helpers import *; from airstep_compiler import *;"
        "m, s = load_model(EXAMPLES / 'non_series_parallel.py'); print(compile_dag(m, s).definition_json)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def build(**task_kwargs) -> DagModel:
    with DAG("policy") as d:
        EmptyOperator(task_id="t", **task_kwargs)
    return DagModel.from_dag(d)


def task_state(compiled, name="t"):
    return compiled.definition["States"][name]


def test_every_lambda_state_retries_service_errors_throttling_and_runner_errors():
    found = uncaught = 0
    for example in ("non_series_parallel.py", "fan_out_fan_in.py"):
        for _, state in _all_states(compile_example(EXAMPLES / example).definition["States"]):
            if state["Type"] == "Task":
                found += 1
                # a step without a Catch ends the execution when it fails: its runner errors are tried longer
                runner = RUNNER_RETRIER if "Catch" in state else UNCAUGHT_RUNNER_RETRIER
                assert state["Retry"][:3] == [*PLATFORM_RETRIERS[:2], runner]
                assert isinstance(state["TimeoutSeconds"], int)
                uncaught += "Catch" not in state
    assert found >= 10 and uncaught >= 3  # (gates, and the run's finalize step)
    assert UNCAUGHT_RUNNER_RETRIER["MaxAttempts"] > RUNNER_RETRIER["MaxAttempts"]
    throttle = PLATFORM_RETRIERS[1]
    assert throttle["ErrorEquals"] == ["Lambda.TooManyRequestsException"] and throttle["JitterStrategy"] == "FULL"


def test_failure_recording_states_catch_so_the_run_carries_on():
    recorders = [
        (name, state)
        for map_min_tasks in (100, 3)  # explicit states, and Maps
        for name, state in _all_states(
            compile_example(EXAMPLES / "non_series_parallel.py", map_min_tasks=map_min_tasks).definition["States"]
        )
        if state["Type"] == "Task" and state["Parameters"]["Payload"].get("action") == "fail"
    ]
    assert len(recorders) >= 4
    for _, state in recorders:
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": ANY}]


def test_retries_map_to_retry_with_airflow_delays():
    compiled = compile_dag(
        build(
            retries=4,
            retry_delay=timedelta(seconds=30),
            retry_exponential_backoff=True,
            max_retry_delay=timedelta(minutes=3),
        ),
        DagSource("x.py", "v1"),
    )
    assert task_state(compiled)["Retry"][3] == {
        "ErrorEquals": ["AirstepTaskFailed", "States.Timeout", "Lambda.Unknown"],
        "IntervalSeconds": 30,
        "MaxAttempts": 4,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 180,
    }


def test_plain_retries_have_constant_delay_and_airflow_default_delay():
    retry = task_state(compile_dag(build(retries=2), DagSource("x.py", "v1")))["Retry"][3]
    assert retry == {
        "ErrorEquals": ["AirstepTaskFailed", "States.Timeout", "Lambda.Unknown"],
        "IntervalSeconds": 300,
        "MaxAttempts": 2,
        "BackoffRate": 1,
    }


def test_no_retries_means_no_task_retrier():
    assert task_state(compile_dag(build(), DagSource("x.py", "v1")))["Retry"] == list(PLATFORM_RETRIERS)


def test_fast_retries_option_waits_one_second():
    retry = task_state(compile_dag(build(retries=2), DagSource("x.py", "v1"), CompileOptions(fast_retries=True)))[
        "Retry"
    ][3]
    assert (retry["IntervalSeconds"], retry["BackoffRate"], retry["MaxAttempts"]) == (1, 1, 2)


def test_execution_timeout_maps_to_timeout_seconds_after_the_runner_had_time_to_record():
    # The runner stops the try at its execution_timeout and records it; the state times out 60 s later.
    assert (
        task_state(compile_dag(build(execution_timeout=timedelta(seconds=42.5)), DagSource("x.py", "v")))[
            "TimeoutSeconds"
        ]
        == 43 + 60
    )
    assert task_state(compile_dag(build(), DagSource("x.py", "v")))["TimeoutSeconds"] == 900 + 60


def test_timeout_over_lambda_limit_is_a_compile_error():
    with pytest.raises(CompileError) as info:
        compile_dag(build(execution_timeout=timedelta(hours=1)), DagSource("x.py", "v"))
    assert info.value.limit == "lambda-timeout"
    assert info.value.line > 0


def test_long_task_ids_get_short_deterministic_state_names():
    long_id = "x" * 200
    name = state_name(long_id)
    assert len(name + "@failed") <= 80
    assert name == state_name(long_id) != state_name("x" * 199 + "y")


def wide_model(n: int) -> DagModel:
    with DAG("wide") as d:
        root = EmptyOperator(task_id="root")
        for i in range(n):
            root >> EmptyOperator(task_id=f"task_with_a_fairly_long_descriptive_name_{i:05d}")
    return DagModel.from_dag(d)


def long_chain_model(n: int) -> DagModel:
    with DAG("long") as d:
        previous = EmptyOperator(task_id="step_with_a_fairly_long_descriptive_name_00000")
        for i in range(1, n):
            current = EmptyOperator(task_id=f"step_with_a_fairly_long_descriptive_name_{i:05d}")
            previous >> current
            previous = current
    return DagModel.from_dag(d)


def test_definition_size_guard_names_the_limit():
    with pytest.raises(CompileError) as info:
        compile_dag(long_chain_model(2500), DagSource("big.py", "v"))
    assert info.value.limit == "definition-size"
    assert "1,048,576" in info.value.message


def test_history_guard_names_the_limit():
    from airstep_compiler.limits import Limits

    compiled = compile_dag(wide_model(300), DagSource("big.py", "v"))
    assert compiled.definition_bytes < 50_000  # 300 parallel tasks share one item processor per Map
    assert compiled.history_events_per_run > 1000
    with pytest.raises(CompileError) as info:
        compile_dag(wide_model(300), DagSource("big.py", "v"), CompileOptions(limits=Limits(history_events=1000)))
    assert info.value.limit == "history-events"
    assert f"{compiled.history_events_per_run:,} execution history events" in info.value.message


def test_wide_parallel_blocks_become_chunked_maps_per_policy():
    with DAG("wide_mixed") as d:
        root = EmptyOperator(task_id="root")
        for i in range(90):
            root >> EmptyOperator(task_id=f"w{i}", retries=1 if i % 3 == 0 else 0)
    compiled = compile_dag(DagModel.from_dag(d), DagSource("x.py", "v"))
    (parallel,) = [s for s in compiled.definition["States"].values() if s["Type"] == "Parallel"]
    sizes = sorted(len(b["States"][b["StartAt"]]["Result"]) for b in parallel["Branches"])
    assert sizes == [20, 30, 40]  # 60 tasks without retries in Maps of 40 and 20; 30 with retries in one
    for branch in parallel["Branches"]:
        items = branch["States"][branch["StartAt"]]["Result"]
        retry_counts = {int(i["task_id"][1:]) % 3 == 0 for i in items}
        assert len(retry_counts) == 1  # one policy per Map


def test_map_items_that_never_wait_skip_the_gate_choice():
    compiled = compile_dag(wide_model(12), DagSource("x.py", "v"))
    (parallel,) = [s for s in compiled.definition["States"].values() if s["Type"] == "Parallel"]
    (branch,) = parallel["Branches"]
    processor = next(s for s in branch["States"].values() if s["Type"] == "Map")["ItemProcessor"]
    assert processor["StartAt"].endswith("@run")
    # run, failed, and where failed goes if it cannot record
    assert sorted(s["Type"] for s in processor["States"].values()) == ["Pass", "Task", "Task"]
    # one per item, plus start, root, parallel, items, map, finalize, check, succeeded
    assert compiled.transitions_per_run == 12 + 8

    gated = compile_example(EXAMPLES / "non_series_parallel.py").definition
    processors = [state["ItemProcessor"] for name, state in _all_states(gated["States"]) if state["Type"] == "Map"]
    assert processors and all(p["States"][p["StartAt"]]["Type"] == "Choice" for p in processors)


def _all_states(states):
    """Every state, in branches and Map item processors too, as (name, state)."""
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _all_states(branch["States"])
        if "ItemProcessor" in state:
            yield from _all_states(state["ItemProcessor"]["States"])


def test_definition_is_plain_jsonpath():
    text = compile_example(EXAMPLES / "etl_taskflow.py").definition_json
    assert "JSONata" not in text and '"Assign"' not in text
    assert json.loads(text)["StartAt"] == "dagrun@start"


def _guarded_branch(*, outside_edge=False, last_rule="all_success", length=3):
    """pick -> [p0 -> p1 -> ..., other]; optionally an edge into p1 from a task off the path."""
    with DAG("guarded") as d:

        @task.branch
        def pick():
            return "other"

        branch = pick()
        path = [EmptyOperator(task_id=f"p{i}") for i in range(length)]
        path[-1].trigger_rule = last_rule
        chain(branch, path[0], *path[1:])
        branch >> EmptyOperator(task_id="other")
        if outside_edge:
            EmptyOperator(task_id="outside") >> path[1]
    return DagModel.from_dag(d)


def _guards(model):
    states = compile_dag(model, DagSource("x.py", "v")).definition["States"]
    found, stack = {}, [states]
    while stack:
        for name, state in stack.pop().items():
            if name.startswith("bypass@") and state["Type"] == "Choice":
                found[name] = (state["Default"], state["Choices"][0]["Next"])
            stack.extend(b["States"] for b in state.get("Branches", ()))
    return found, states


def test_a_path_skipped_for_certain_gets_a_guard_and_its_owner_the_verdicts():
    model = _guarded_branch()
    assert model.task_map["pick"].skips_downstream and not model.task_map["p0"].skips_downstream
    assert model.certain_skips(["p0"]) == {"p0", "p1", "p2"}
    guards, states = _guards(model)
    assert guards == {"bypass@1": ("p0", "bypass@1@end")}
    (parallel,) = [s for s in states.values() if s["Type"] == "Parallel"]
    (pick,) = [s for s in states.values() if s.get("Parameters", {}).get("Payload", {}).get("task_id") == "pick"]
    assert pick["Parameters"]["Payload"]["guards"] == {"g1": "p0"}
    assert (pick["ResultSelector"], pick["ResultPath"]) == ({"g1.$": "$.Payload.bypass.g1"}, "$.bypass1")
    assert parallel["ResultPath"] is None  # the verdicts stay in the state data only along the sequence


@pytest.mark.parametrize(
    ("variant", "stretch"),
    [
        ({"outside_edge": True}, None),  # p1 has an upstream off the path: its skip is not certain
        ({"last_rule": "all_done"}, None),  # p2 would run: p0, p1 alone save too little
        ({"last_rule": "none_failed_min_one_success"}, ("p0", "bypass@1@end")),
        ({"length": 2}, None),  # two transitions saved, one spent on every run that takes the path
        ({"length": 4, "last_rule": "all_done"}, ("p0", "p3")),  # the guard stops before p3
    ],
)
def test_guards_only_where_the_skip_is_certain_and_worth_a_transition(variant, stretch):
    guards, _ = _guards(_guarded_branch(**variant))
    assert guards == ({"bypass@1": stretch} if stretch else {})


def test_no_guard_in_a_dag_with_setup_tasks():
    model = _guarded_branch()
    setup = dataclasses.replace(model.tasks[0], task_id="s", upstream=(), is_setup=True)
    assert dataclasses.replace(model, tasks=(*model.tasks, setup)).certain_skips(["p0"]) == frozenset()


def test_compile_says_what_a_mapped_task_became():
    compiled = compile_example(EXAMPLES / "map_reduce.py")
    assert compiled.mapped_tasks == ("measure",)
    [shape] = compiled.shapes()
    assert shape.startswith("mapped task measure: an expand step, then one run state per instance: up to 40 in an")
    assert "more in a Distributed Map of child executions" in shape


def test_a_distributed_map_catches_what_fails_it_and_its_children_output_nothing():
    """Its children's outputs are gathered into the parent's state data (256 KiB): each outputs {};
    an ItemReader that cannot read its object fails the Map, which carries on to the failure state."""
    states = compile_example(EXAMPLES / "map_reduce.py").definition["States"]
    children = states["measure@dmap"]
    assert children["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "measure@failed"}]
    processor = children["ItemProcessor"]["States"]
    assert processor["measure@d"]["OutputPath"] is None and processor["measure@d@failed"]["OutputPath"] is None
    assert "OutputPath" not in states["measure@map"]["ItemProcessor"]["States"]["measure@i"]
