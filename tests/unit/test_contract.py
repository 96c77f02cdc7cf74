"""airstep.contract is the only place the compiler/runtime contract is spelled, and both sides agree."""

from __future__ import annotations

import re

import pytest

from airstep import contract
from airstep.contract import Action, DagRef, DagRun, Payload, ScheduleKind, TaskOutcome, time_out_event
from airstep.model import DagModel
from airstep.states import RunState, RunType, TaskState
from airstep.trigger_rule import TriggerRule
from airstep_compiler import DagSource, compile_dag
from helpers import ROOT, load_model

SOURCES = [
    path
    for folder in ("layers", "compiler", "functions")
    for path in (ROOT / folder).rglob("*.py")
    if "__pycache__" not in path.parts
]
OWNERS = {
    "contract": ROOT / "layers/runtime/airstep/contract.py",
    "states": ROOT / "layers/runtime/airstep/states.py",
    "trigger_rule": ROOT / "layers/runtime/airstep/trigger_rule.py",
}
CONTRACT_LITERALS = sorted(
    {
        *(action.value for action in Action),
        *(kind.value for kind in ScheduleKind),
        contract.CTX,
        contract.SIGNAL,
        contract.WAIT_FOR,
        contract.TOKEN,
        contract.TASK_FAILED,
        contract.TASK_FAILED_NO_RETRY,
        contract.DAG_RUN_FAILED,
        contract.STATES_ALL,
        contract.STATES_TIMEOUT,
        contract.LAMBDA_UNKNOWN,
        contract.CAUGHT_ERROR_PATH,
        contract.OUTCOME_PATH,
        *contract.HELPER_SUFFIXES,
        contract.DAGRUN_START,
        contract.DAGRUN_DEADLINES,
        contract.DAGRUN_FINALIZE,
        contract.DAGRUN_CHECK,
        contract.DAGRUN_FAILED,
        contract.DAGRUN_SUCCEEDED,
    }
)
# The same word with another meaning: Airflow's sensitive-field names for the secrets masker.
ELSEWHERE = {
    "token": {ROOT / "layers/runtime/airstep/secrets_masker.py"},
    "success": {ROOT / "layers/runtime/airstep/runtime/asset_events.py"},  # a trigger event's status, no state
    "run": {ROOT / "compiler/airstep_ui/records.py"},  # the `airstep run` command it starts
}
STATE_LITERALS = sorted({*TaskState, *RunState, *RunType})
RULE_LITERALS = sorted(rule.value for rule in TriggerRule)


def spelled_outside(owner: str, literal: str) -> list[str]:
    """Source lines outside `owner` that hold `literal` as a whole string (or a string starting with it)."""
    pattern = re.compile(r"""["']""" + re.escape(literal) + r"""["'{]""")
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SOURCES
        if path != OWNERS[owner] and path not in ELSEWHERE.get(literal, ())
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]


@pytest.mark.parametrize("literal", CONTRACT_LITERALS)
def test_contract_strings_are_spelled_only_in_the_contract(literal):
    assert spelled_outside("contract", literal) == []


@pytest.mark.parametrize("literal", STATE_LITERALS)
def test_states_are_spelled_only_in_their_enums(literal):
    assert spelled_outside("states", literal) == []


@pytest.mark.parametrize("literal", RULE_LITERALS)
def test_trigger_rules_are_spelled_only_in_their_enum(literal):
    assert spelled_outside("trigger_rule", literal) == []


def test_the_check_finds_a_second_spelling(tmp_path, monkeypatch):
    stray = tmp_path / "stray.py"
    stray.write_text('ACTION = "finalize"\nSTATE = f"{x}@failed"\n')
    monkeypatch.setattr(f"{__name__}.SOURCES", [*SOURCES, stray])
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path.parent)
    assert spelled_outside("contract", "finalize") and not spelled_outside("contract", "gate")


def test_compiled_payloads_are_what_the_runner_reads():
    """Resolve the JSONPaths of every Lambda payload in a compiled DAG (with and without Maps) the way
    Step Functions would, and read them back as the runner does."""
    model, _ = load_model(ROOT / "examples" / "dags" / "non_series_parallel.py")
    run = DagRun("d", "manual__x", RunType.MANUAL, None, None, None, {"k": 1})
    dag = DagRef(model.dag_id, "/dags/d.py", "v1", DagSource("/dags/d.py", "v1").model_uri(model))
    seen: dict[Action, int] = {}
    for map_min in (100, 2):  # explicit states; then every parallel block as Maps
        compiled = compile_dag(model, DagSource(dag.file, dag.version), _options(map_min))
        for payload in _lambda_payloads(compiled.definition["States"]):
            state_data = {"dag": dag.to_dict(), "run": run.to_input(), "item": _an_item(compiled.definition)}
            event = _resolve(payload, state_data)
            parsed = Payload.from_event(event)
            assert parsed.dag == dag and parsed.run == run
            assert parsed.action is Action.FINALIZE or parsed.task_id in model.task_map
            seen[parsed.action] = seen.get(parsed.action, 0) + 1
    elsewhere = {
        Action.EXPAND,
        Action.SIGNAL,
        Action.TIME_OUT,
        Action.ACQUIRE,
        Action.ARM,
        Action.DECIDE_DEADLINE,
        Action.END_CALL,
    }
    assert set(seen) == set(Action) - elsewhere  # a mapped task's, a pooled task's, deadlines': below
    function, event = time_out_event(compiled.definition, "arn:execution", run.to_input())
    parsed = Payload.from_event(event)  # the run tracker's, for a run past its dagrun_timeout
    assert (function, parsed.action, parsed.dag, parsed.run) == (_options(2).function_name, Action.TIME_OUT, dag, run)


def test_a_service_integrations_payloads_and_outcome_are_what_each_side_reads():
    """A service integration's try: the run step's outcome gives the call its rendered parameters
    where the call state reads them; the record step reads the call's result or caught error."""
    model, _ = load_model(ROOT / "examples" / "dags" / "aws_calls.py")
    run = DagRun("aws_calls", "manual__x", RunType.MANUAL, None, None, None, {})
    dag = DagRef(model.dag_id, "/dags/a.py", "v1", "s3://b/m.json")
    compiled = compile_dag(model, DagSource(dag.file, dag.version), _options(100))
    branch = compiled.definition["States"]["notify"]["Branches"][0]["States"]
    outcome = TaskOutcome("notify", TaskState.RUNNING, 1, call={"Message": "rendered"}).to_dict()
    state_data = {"dag": dag.to_dict(), "run": run.to_input(), "begun": {"outcome": outcome}}
    (choice,) = branch["notify@begun"]["Choices"]
    assert _resolve({"state.$": choice["Variable"]}, state_data)["state"] == choice["StringEquals"]
    assert _resolve(branch["notify@call"]["Parameters"], state_data)["Message"] == "rendered"
    call = branch["notify@call"]
    # the call's ResultPath and its Catch's both put what it did at `begun`, in the rendered call's place
    assert call["ResultPath"] == call["Catch"][0]["ResultPath"] == "$.begun"
    assert call["ResultSelector"] == {"result.$": "$"}
    answered = {"MessageId": "m", "SdkHttpMetadata": {}}
    raised = {"Error": "SNS.NotFoundException", "Cause": "no topic"}
    for ended, expected in (({"result": answered}, (answered, None)), (raised, (None, raised))):
        event = _resolve(branch["notify@record"]["Parameters"]["Payload"], {**state_data, "begun": ended})
        parsed = Payload.from_event(event)
        assert (parsed.action, parsed.task_id, parsed.dag, parsed.run) == (Action.END_CALL, "notify", dag, run)
        assert (parsed.call_result, parsed.call_error) == expected
    assert TaskOutcome.from_dict(outcome) == TaskOutcome("notify", TaskState.RUNNING, 1, call={"Message": "rendered"})


def test_a_mapped_tasks_payloads_are_what_the_runner_reads():
    """The expand, instance and signal payloads of a mapped task that gates wait on, resolved as Step
    Functions resolves them (an instance's item from the Map's ItemSelector)."""
    from airstep import DAG, task

    with DAG("mapped_gates") as d:

        @task
        def numbers():
            return [1, 2]

        @task
        def double(x):
            return 2 * x

        @task
        def other():
            return 0

        @task
        def join(*values):
            return values

        mapped, side = double.expand(x=numbers()), other()
        join(mapped, side)
        side >> join.override(task_id="join2")(side)
        numbers_task = mapped.operator.dag.task_dict["numbers"]
        numbers_task >> d.task_dict["join2"]
    model = DagModel.from_dag(d)
    compiled = compile_dag(model, DagSource("/dags/d.py", "v1"))
    run = DagRun("d", "manual__x", RunType.MANUAL, None, None, None, {})
    dag = DagRef(model.dag_id, "/dags/d.py", "v1", DagSource("/dags/d.py", "v1").model_uri(model))
    data = {"dag": dag.to_dict(), "run": run.to_input()}
    parsed = [
        Payload.from_event(_resolve(p, data))
        for p in _lambda_payloads(compiled.definition["States"])
        if "item" not in str(p)
    ]
    actions = {(p.action, p.task_id) for p in parsed}
    assert {(Action.EXPAND, "double"), (Action.SIGNAL, "double")} <= actions
    [instances] = [s for s in _all_states(compiled.definition["States"]) if s.get("ItemsPath") == "$.mapped.indexes"]
    item = {
        k.removesuffix(".$"): (3 if v == "$$.Map.Item.Value" else v)
        for k, v in instances["ItemSelector"]["item"].items()
    }
    [run_payload] = _lambda_payloads(instances["ItemProcessor"]["States"])
    instance = Payload.from_event(_resolve(run_payload, {**data, "item": item}))
    assert (instance.action, instance.task_id, instance.map_index) == (Action.RUN, "double", 3)


def test_a_pooled_tasks_acquire_payloads_are_what_the_runner_reads():
    """A pooled task waits for its slots in an acquire state before its run state; a pooled mapped
    task, each instance in its own (its map index from the Map's item)."""
    from airstep import DAG, task

    with DAG("pooled") as d:

        @task(pool="warehouse")
        def load():
            return [1, 2]

        @task(pool="warehouse", pool_slots=2)
        def write(x):
            return x

        write.expand(x=load())
    model = DagModel.from_dag(d)
    assert (model.task_map["load"].pool, model.task_map["write"].pool_slots) == ("warehouse", 2)
    compiled = compile_dag(model, DagSource("/dags/d.py", "v1"))
    run = DagRun("pooled", "manual__x", RunType.MANUAL, None, None, None, {})
    dag = DagRef(model.dag_id, "/dags/d.py", "v1", DagSource("/dags/d.py", "v1").model_uri(model))
    data = {"dag": dag.to_dict(), "run": run.to_input()}
    states = compiled.definition["States"]
    acquire = Payload.from_event(_resolve(states["load@pool"]["Parameters"]["Payload"], data))
    assert (acquire.action, acquire.task_id, acquire.token) == (Action.ACQUIRE, "load", "task-token")
    assert states["load@pool"]["Next"] == "load" and states["load@pool"]["Resource"].endswith("waitForTaskToken")
    [instances] = [s for s in _all_states(states) if s.get("ItemsPath") == "$.mapped.indexes"]
    processor = instances["ItemProcessor"]
    assert processor["StartAt"].endswith("@pool")
    item = {"task_id": "write", "map_index": 1}
    parsed = Payload.from_event(
        _resolve(processor["States"][processor["StartAt"]]["Parameters"]["Payload"], {**data, "item": item})
    )
    assert (parsed.action, parsed.task_id, parsed.map_index) == (Action.ACQUIRE, "write", 1)


def test_outcomes_round_trip():
    outcome = TaskOutcome("t", TaskState.UP_FOR_RETRY, 2)
    assert TaskOutcome.from_dict(outcome.to_dict()) == outcome
    assert TaskOutcome.from_dict({"task_id": "t", "open": False}) is None


def _options(map_min: int):
    from airstep_compiler import CompileOptions

    return CompileOptions(map_min_tasks=map_min)


def _lambda_payloads(states: dict) -> list[dict]:
    """The payloads of the states that invoke the task runner (not a service integration's call)."""
    found = []
    for state in states.values():
        if state["Type"] == "Task" and state["Parameters"].get("FunctionName") == _options(0).function_name:
            found.append(state["Parameters"]["Payload"])
        for branch in state.get("Branches", []):
            found.extend(_lambda_payloads(branch["States"]))
        if "ItemProcessor" in state:
            found.extend(_lambda_payloads(state["ItemProcessor"]["States"]))
    return found


def _an_item(definition: dict) -> dict:
    """A Map item of the definition, a gated one if there is one (it has every field)."""
    items = [item for state in _all_states(definition["States"]) for item in state.get("Result") or []]
    return max(items, key=len, default={})


def _all_states(states: dict) -> list[dict]:
    found = []
    for state in states.values():
        found.append(state)
        for branch in state.get("Branches", []):
            found.extend(_all_states(branch["States"]))
    return found


def _resolve(template: dict, data: dict) -> dict:
    resolved = {}
    for key, value in template.items():
        if key.endswith(".$") and value.startswith("$$"):
            resolved[key[:-2]] = "task-token"
        elif key.endswith(".$"):
            node = data
            for part in value.removeprefix("$").strip(".").split("."):
                node = node[part] if part else node
            resolved[key[:-2]] = node
        else:
            resolved[key] = value
    return resolved


def test_models_from_files_and_hand_built_models_compile_alike():
    model, source = load_model(ROOT / "examples" / "dags" / "etl_taskflow.py")
    again = DagModel.from_json(model.to_json())
    assert compile_dag(again, source).definition_json == compile_dag(model, source).definition_json


def test_a_dags_deadline_payloads_are_what_the_runner_reads():
    """A DAG with deadline alerts: its first step's payload (arm), and the event a deadline's schedule
    sends when it fires, read back as the runner reads them."""
    model, _ = load_model(ROOT / "examples" / "dags" / "deadline_alert.py")
    run = DagRun("d", "manual__x", RunType.MANUAL, None, None, None)
    dag = DagRef(model.dag_id, "/dags/d.py", "v1", DagSource("/dags/d.py", "v1").model_uri(model))
    compiled = compile_dag(model, DagSource(dag.file, dag.version), _options(100))
    states = compiled.definition["States"]
    assert states[contract.DAGRUN_START]["Next"] == contract.DAGRUN_DEADLINES
    state_data = {"dag": dag.to_dict(), "run": run.to_input()}
    armed = Payload.from_event(_resolve(states[contract.DAGRUN_DEADLINES]["Parameters"]["Payload"], state_data))
    assert (armed.action, armed.dag, armed.run) == (Action.ARM, dag, run)
    fired = Payload.from_event(contract.deadline_event(dag, run, "arn:execution", 1))
    assert (fired.action, fired.alert, fired.dag, fired.run, fired.execution) == (
        Action.DECIDE_DEADLINE,
        1,
        dag,
        run,
        "arn:execution",
    )
