"""Airflow's import paths resolve to airstep while airstep loads a DAG file or runs a task, and only then."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from airstep.compat.imports import NotSupportedByAirstep, airflow_imports
from airstep.compat.surface import SURFACE, target
from airstep.loader import load_dag_file
from airstep.model import DagModel
from airstep.runtime.context import get_current_context
from airstep.sdk.dag import DAG
from airstep_cli.main import mermaid


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_every_listed_name_resolves_to_an_airstep_object():
    with airflow_imports():
        import importlib

        for module_name, names in SURFACE.items():
            module = importlib.import_module(module_name)
            for name, where in names.items():
                airstep_module, attribute = where.split(":")
                assert airstep_module.startswith("airstep.")
                expected = getattr(importlib.import_module(airstep_module), attribute)
                assert getattr(module, name) is expected, f"{module_name}.{name}"


def test_airflow_3_and_airflow_2_paths_build_the_same_dag(tmp_path):
    path = _write(
        tmp_path,
        "both.py",
        """
        import pendulum
        from airflow import DAG as TopLevelDAG
        from airflow.decorators import task
        from airflow.models.baseoperator import chain
        from airflow.operators.bash import BashOperator
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG, Label, chain_linear
        from airflow.utils.trigger_rule import TriggerRule
        import airflow.sdk

        assert TopLevelDAG is DAG is airflow.sdk.DAG

        with DAG("both", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris")):
            start = EmptyOperator(task_id="start")
            a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
            c, d = EmptyOperator(task_id="c"), EmptyOperator(task_id="d")
            chain_linear(start, [a, b], [c, d])
            done = BashOperator(task_id="done", bash_command="true", trigger_rule=TriggerRule.ALL_DONE)
            chain(c, Label("c is done") , done)
            d >> Label("d is done") >> done

            @task
            def report():
                return 1

            done >> report()
        """,
    )
    loaded = load_dag_file(path)
    assert not loaded.errors, loaded.errors
    model = DagModel.from_dag(loaded.dags["both"])
    upstream = {t.task_id: set(t.upstream) for t in model.tasks}
    assert upstream == {
        "start": set(),
        "a": {"start"},
        "b": {"start"},
        "c": {"a", "b"},
        "d": {"a", "b"},
        "done": {"c", "d"},
        "report": {"done"},
    }
    assert model.timezone == "Europe/Paris"
    assert model.edge_labels == (("c", "done", "c is done"), ("d", "done", "d is done"))
    assert DagModel.from_json(model.to_json()) == model
    assert '-->|"c is done"|' in mermaid(model)


def test_the_amazon_providers_own_example_style_loads(tmp_path):
    # The provider's example DAGs import the authoring names through the common.compat provider and
    # branch on its version flags: airstep is Airflow 3.3 to them.
    path = _write(
        tmp_path,
        "provider_style.py",
        """
        from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
        from airflow.providers.amazon.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_4_PLUS, NOTSET, is_arg_set
        from airflow.providers.common.compat.sdk import DAG, AirflowSkipException, TriggerRule, chain, task

        assert AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_4_PLUS and not is_arg_set(NOTSET) and is_arg_set(None)

        with DAG("provider_style", schedule="@once") as dag:
            @task
            def topic():
                return "arn:aws:sns:us-east-1:123456789012:t"

            publish = SnsPublishOperator(task_id="publish", target_arn=topic(), message="hi")

            @task(trigger_rule=TriggerRule.ALL_DONE)
            def done():
                raise AirflowSkipException()

            chain(publish, done())
        """,
    )
    loaded = load_dag_file(path)
    assert not loaded.errors, loaded.errors
    model = DagModel.from_dag(loaded.dags["provider_style"])
    assert {t.task_id: set(t.upstream) for t in model.tasks} == {
        "topic": set(),
        "publish": {"topic"},
        "done": {"publish"},
    }
    unexported = _write(tmp_path, "unexported.py", "from airflow.providers.common.compat.sdk import SkipMixin\n")
    assert "`airflow.providers.common.compat.sdk.SkipMixin`" in load_dag_file(unexported).errors[0].message


@pytest.mark.parametrize(
    ("statement", "line", "named"),
    [
        ("from airflow.providers.google.cloud.operators.bigquery import X", 3, "`airflow.providers.google`"),
        ("import airflow.providers.google.cloud", 3, "`airflow.providers.google`"),
        ("from airflow.sdk import AssetAlias", 3, "`airflow.sdk.AssetAlias`"),
        ("from airflow.sdk import DAG, NoSuchThing", 3, "`airflow.sdk.NoSuchThing`"),
        ("import airflow.sdk\nx = airflow.sdk.AssetAlias", 4, "`airflow.sdk.AssetAlias`"),
    ],
)
def test_what_airstep_lacks_is_an_error_naming_the_file_line_and_name(tmp_path, statement, line, named):
    path = _write(tmp_path, "lacks.py", f"from airflow.sdk import DAG\n\n{statement}\n")
    loaded = load_dag_file(path)
    assert [e.line for e in loaded.errors] == [line]
    assert named in loaded.errors[0].message
    assert "is not supported by airstep" in loaded.errors[0].message


def test_chain_linear_refuses_what_airflow_refuses(tmp_path):
    path = _write(
        tmp_path,
        "lone.py",
        """
        from airflow.sdk import DAG, chain_linear
        from airflow.operators.empty import EmptyOperator
        with DAG("lone"):
            chain_linear([EmptyOperator(task_id="a"), EmptyOperator(task_id="b")])
        """,
    )
    [error] = load_dag_file(path).errors
    assert error.line == 5 and "did you forget to expand a list with `*`" in error.message


def _airflow_modules() -> list[str]:
    return [n for n in sys.modules if n == "airflow" or n.startswith("airflow.")]


@pytest.fixture
def no_airflow_afterwards():
    yield
    for name in _airflow_modules():
        del sys.modules[name]


def test_a_real_airflow_installed_beside_airstep_is_never_shadowed(tmp_path, monkeypatch, no_airflow_afterwards):
    real = tmp_path / "site" / "airflow"
    (real / "sdk").mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    (real / "sdk" / "__init__.py").write_text("REAL_SDK = True\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    import airflow  # the real one, imported by other code before airstep loads a file

    dag_file = _write(
        tmp_path,
        "mine.py",
        """
        from airflow.sdk import DAG
        from airflow.operators.empty import EmptyOperator
        with DAG("mine"):
            EmptyOperator(task_id="t")
        """,
    )
    loaded = load_dag_file(dag_file)
    assert not loaded.errors and isinstance(loaded.dags["mine"], DAG)
    assert sys.modules["airflow"] is airflow and airflow.REAL
    import airflow.sdk

    assert airflow.sdk.REAL_SDK
    with airflow_imports():
        import airflow.sdk as answered

        assert answered.DAG is DAG
    assert sys.modules["airflow.sdk"].REAL_SDK


def test_scopes_nest_and_leave_nothing_behind():
    assert _airflow_modules() == []
    with airflow_imports():
        with airflow_imports():
            import airflow.sdk  # noqa: F401
        assert "airflow.sdk" in sys.modules
    assert _airflow_modules() == []
    with pytest.raises(ModuleNotFoundError):
        import airflow.sdk  # noqa: F401,F811 - nothing answers outside a scope (no Airflow installed here)


def test_unsupported_module_import_raises_an_import_error():
    with (
        airflow_imports(),
        pytest.raises(NotSupportedByAirstep, match="`airflow.providers.amazon.aws.operators.sagemaker`"),
    ):
        import airflow.providers.amazon.aws.operators.sagemaker  # noqa: F401


def test_get_current_context_outside_a_task_says_where_to_call_it():
    with pytest.raises(RuntimeError, match="call it while a task runs"):
        get_current_context()


def test_targets_are_written_module_colon_attribute():
    assert target("airflow.sdk", "DAG") == "airstep.sdk.dag:DAG"
    assert target("airflow.sdk", "AssetAlias") is None
