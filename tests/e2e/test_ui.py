"""`airstep ui`: every page and its /api data, over the records of a real local run (task groups,
mapped tasks, retries, a failure), and the 404s; the pictures hold every task in its state."""

from __future__ import annotations

import io
import json
import re
import threading
import time
import urllib.request
from urllib.parse import quote, unquote
from wsgiref.util import setup_testing_defaults

import pytest
from test_cli import airstep

from airstep_ui.records import LocalRecords
from airstep_ui.server import UiApp, serve

PIPELINE = """
from datetime import datetime, timedelta
from airflow.sdk import DAG, Param, task, task_group

params = {"batch": Param(10, type="integer", minimum=1), "mode": Param("full", enum=["full", "delta"])}

with DAG("pipeline", schedule="@daily", start_date=datetime(2026, 1, 1), params=params):
    @task
    def extract():
        print("extracted 2 parts")
        return [1, 2]

    @task_group
    def transform(parts):
        @task
        def clean(part):
            return part * 10

        @task
        def check(cleaned):
            return sum(cleaned)

        return check(clean.expand(part=parts))

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def load(total):
        raise RuntimeError(f"the warehouse refused {total}")

    load(transform(extract()))
"""


def get(app, path):
    """(status, content type, body) of a GET, through the WSGI app as a server would call it."""
    status, headers, body = request(app, "GET", path)
    return status, headers["Content-Type"], body


def request(app, method, path, body=b"", **headers):
    """(status, headers, body) of a request, through the WSGI app as a server would call it (a
    browser's same-origin request, unless `headers` say otherwise: HTTP_ORIGIN=..., CONTENT_TYPE=...)."""
    environ = {"PATH_INFO": unquote(path.split("?")[0]), "QUERY_STRING": path.partition("?")[2]}  # as servers do
    setup_testing_defaults(environ)
    environ.update(REQUEST_METHOD=method, CONTENT_LENGTH=str(len(body)), HTTP_HOST="127.0.0.1:8080")
    environ.update({"HTTP_SEC_FETCH_SITE": "same-origin", **headers})
    for name in [name for name, value in environ.items() if value is None]:  # a header not sent
        del environ[name]
    environ["wsgi.input"] = io.BytesIO(body)
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    text = b"".join(app(environ, start_response)).decode()
    return int(seen["status"].split()[0]), seen["headers"], text


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui")
    (folder / "pipeline.py").write_text(PIPELINE)
    result = airstep("run", "pipeline.py", "--fast-retries", "--json", cwd=folder)
    assert result.returncode == 1, result.stderr  # load fails on its second try too
    return UiApp(LocalRecords(folder / ".airstep")), json.loads(result.stdout)["run_id"]


def test_the_api_gives_dags_the_grid_and_a_runs_task_instances(ran):
    app, run_id = ran
    status, kind, body = get(app, "/api/dags")
    assert status == 200 and kind.startswith("application/json")
    (dag,) = json.loads(body)["dags"]
    assert (dag["dag_id"], dag["schedule"], dag["paused"]) == ("pipeline", "@daily", False)
    assert [r["run_id"] for r in dag["latest_runs"]] == [run_id]

    grid = json.loads(get(app, "/api/dags/pipeline")[2])
    assert [(t["task_id"], t["group"], t["mapped"]) for t in grid["tasks"]] == [
        ("extract", None, False),
        ("transform.clean", "transform", True),
        ("transform.check", "transform", False),
        ("load", None, False),
    ]
    (column,) = grid["runs"]
    assert column["run_id"] == run_id and column["state"] == "failed"
    assert column["tasks"]["transform.clean"] == {"state": "success", "instances": 2}
    assert column["tasks"]["load"] == {"state": "failed", "instances": 1}

    run = json.loads(get(app, f"/api/dags/pipeline/runs/{quote(run_id, safe='')}")[2])
    assert run["state"] == "failed" and run["run_type"] == "manual"
    shown = {(t["task_id"], t["map_index"]): t for t in run["tasks"]}
    assert set(shown) == {
        ("extract", -1),
        ("transform.clean", 0),
        ("transform.clean", 1),
        ("transform.check", -1),
        ("load", -1),
    }
    assert all(set(t) >= {"task_id", "map_index", "state", "try_number", "start", "end"} for t in run["tasks"])
    assert (shown["load", -1]["state"], shown["load", -1]["try_number"]) == ("failed", 2)
    order = [t["start"] for t in run["tasks"]]
    assert order == sorted(order)
    # who started it (the audit trail), on the DAG's page and the run's
    (started,) = grid["audit"]
    assert [started[k] for k in ("action", "run_id", "via", "outcome")] == ["trigger", run_id, "cli", "failed"]
    assert started["principal"].startswith("local:") and run["audit"] == grid["audit"]


def test_the_run_page_draws_every_task_in_its_state_and_links_each_trys_log(ran):
    app, run_id = ran
    status, kind, page = get(app, f"/dags/pipeline/runs/{quote(run_id, safe='')}")
    assert status == 200 and kind.startswith("text/html")
    graph = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" class="graph"') : page.index("</svg>") + 6]
    drawn = dict(re.findall(r'class="task state-[a-z_]+" data-task-id="([^"]+)" data-state="([a-z_]+)"', graph))
    assert drawn == {
        "extract": "success",
        "transform.clean": "success",
        "transform.check": "success",
        "load": "failed",
    }
    assert 'data-group-id="transform"' in graph and "clean [2]" in graph  # a group box; a mapped task's count
    assert re.findall(r'class="edge" data-from="([^"]+)" data-to="([^"]+)"', graph) == [
        ("extract", "transform.clean"),
        ("transform.check", "load"),
        ("transform.clean", "transform.check"),
    ]
    bars = re.findall(r'class="bar state-([a-z_]+)" data-task-id="([^"]+)" data-map-index="(-?\d+)"', page)
    assert [(task, state) for state, task, _ in bars][0] == ("extract", "success")  # in start order
    assert len(bars) == 5 and bars[-1][:2] == ("failed", "load")
    assert page.count("class=log-link") == 6  # one link per try: load had two
    gantt = page[page.index('class="gantt"') :]
    load = gantt[gantt.index('data-task-id="load"') : gantt.index("</g>", gantt.index('data-task-id="load"'))]
    # every try of load, the wait for its retry between them, and the time it was queued before
    assert re.findall(r'class="try state-([a-z_]+)" data-try="(\d)"', load) == [("up_for_retry", "1"), ("failed", "2")]
    at = {
        kind: float(x)
        for kind, x in re.findall(r'<rect class="(queued|waiting|try[^"]*)"(?: data-try="\d")? x="([\d.]+)"', load)
    }
    assert at["queued"] < at["try state-up_for_retry"] < at["waiting"] < at["try state-failed"]

    beyond = get(app, f"/api/dags/pipeline/runs/{quote(run_id, safe='')}/tasks/load/logs?try=3")
    assert beyond[0] == 404 and "try 3: load has had tries 1 to 2" in beyond[2]
    unknown = get(app, f"/api/dags/pipeline/runs/{quote(run_id, safe='')}/tasks/transform.clean/logs?map_index=7")
    assert unknown[0] == 404 and "has no try of 'transform.clean[7]'" in unknown[2]
    status, _, log = get(app, f"/dags/pipeline/runs/{quote(run_id, safe='')}/tasks/load/logs?map_index=-1&try=2")
    assert status == 200 and "Traceback (most recent call last)" in log
    assert "RuntimeError: the warehouse refused 30" in log
    data = json.loads(get(app, f"/api/dags/pipeline/runs/{quote(run_id, safe='')}/tasks/extract/logs")[2])
    assert (data["try_number"], data["log"]) == (1, "extracted 2 parts\n")


def test_the_dags_page_and_the_grid_link_to_the_runs(ran):
    app, run_id = ran
    status, _, home = get(app, "/")
    assert status == 200 and 'data-dag-id="pipeline"' in home and "@daily" in home
    status, _, grid = get(app, "/dags/pipeline")
    assert status == 200 and f"/dags/pipeline/runs/{quote(run_id, safe='')}" in grid
    assert 'data-group-id="transform"' in grid and 'class="cell state-failed"' in grid
    assert "<h2>Audit</h2>" in grid and grid.count("<tr class=audit-record>") == 1


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/dags/nope", "no DAG &#x27;nope&#x27;"),
        ("/dags/pipeline/runs/nope", "no run &#x27;nope&#x27; of &#x27;pipeline&#x27;"),
        ("/somewhere/else", "no page at /somewhere/else"),
        ("/api/dags/nope", "no DAG 'nope'"),
    ],
)
def test_unknown_dags_runs_and_pages_are_404s_that_say_what_is_missing(ran, path, message):
    app, _ = ran
    status, kind, body = get(app, path)
    assert status == 404 and message in body
    assert kind.startswith("application/json" if path.startswith("/api") else "text/html")


def test_the_server_serves_the_app_on_this_machine(ran):
    app, _ = ran
    server = serve(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/api/dags", timeout=10) as response:
            assert response.status == 200 and json.loads(response.read())["dags"][0]["dag_id"] == "pipeline"
    finally:
        server.shutdown()
        server.server_close()


def test_a_graph_of_a_thousand_tasks_has_every_task_in_its_own_place():
    from airstep.model import DagModel, TaskModel
    from airstep_ui.layout import NODE_HEIGHT, NODE_WIDTH
    from airstep_ui.pictures import graph_svg

    tasks = [
        TaskModel(f"t{i}", tuple(sorted(f"t{j}" for j in {max(0, i - 7), i // 2} if j < i)), 1) for i in range(1000)
    ]
    model = DagModel("big", "big.py", 1, tuple(tasks))
    svg = graph_svg(model, [])
    boxes = [(float(x), float(y)) for x, y in re.findall(r'<rect x="(-?[\d.]+)" y="(-?[\d.]+)" width="180"', svg)]
    assert len(boxes) == 1000
    by_column = {}
    for x, y in boxes:
        by_column.setdefault(x, []).append(y)
    for ys in by_column.values():  # in each layer, no two boxes overlap
        ys.sort()
        assert all(b - a >= NODE_HEIGHT for a, b in zip(ys, ys[1:]))
    assert NODE_WIDTH == 180


def test_the_trigger_form_asks_for_each_param_and_refuses_a_bad_value_by_name(ran):
    app, _ = ran
    grid = get(app, "/dags/pipeline")[2]
    assert '<input type="number" name="batch" id="param-batch" value="10">' in grid
    assert '<select name="mode" id="param-mode"><option selected>full</option><option>delta</option></select>' in grid

    status, _, page = request(app, "POST", "/dags/pipeline/trigger", b"batch=0&mode=full")
    assert status == 400 and "No run started: Invalid input for param batch" in page
    assert 'value="0"' in page  # the form keeps what was sent
    status, _, page = request(app, "POST", "/dags/pipeline/trigger", b"batch=abc&mode=full")
    assert status == 400 and "Invalid input for param batch" in page
    sent = json.dumps({"conf": {"mode": "x"}}).encode()
    status, _, body = request(app, "POST", "/api/dags/pipeline/trigger", sent, CONTENT_TYPE="application/json")
    assert status == 400 and "Invalid input for param mode" in json.loads(body)["error"]
    assert request(app, "GET", "/dags/pipeline/trigger")[0] == 404  # a trigger is a POST
    assert request(app, "POST", "/dags/pipeline")[0] == 405


def test_a_run_triggered_from_the_form_runs_here_and_shows_in_the_grid(ran):
    app, run_id = ran
    status, headers, _ = request(app, "POST", "/dags/pipeline/trigger", b"batch=3&mode=delta")
    assert status == 303 and headers["Location"].startswith("/dags/pipeline?notice=Run+starting")
    deadline = time.monotonic() + 60
    while len(json.loads(get(app, "/api/dags/pipeline")[2])["runs"]) < 2:
        assert time.monotonic() < deadline, "the triggered run never showed"
        time.sleep(0.5)
    newest = json.loads(get(app, "/api/dags/pipeline")[2])["runs"][0]
    assert newest["run_id"] != run_id and newest["run_type"] == "manual"
    while len(trail := json.loads(get(app, "/api/dags/pipeline")[2])["audit"]) < 2:  # written as the run ends
        assert time.monotonic() < deadline, "the triggered run left no audit record"
        time.sleep(0.2)
    assert (trail[0]["run_id"], trail[0]["via"]) == (newest["run_id"], "ui")
    assert 'conf={"batch": 3, "mode": "delta"}' in trail[0]["details"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        # a page of another site posting a form to this machine: the browser says where it comes from
        ("POST", "/dags/pipeline/trigger", {"HTTP_SEC_FETCH_SITE": "cross-site"}, 403),
        ("POST", "/dags/pipeline/trigger", {"HTTP_SEC_FETCH_SITE": None, "HTTP_ORIGIN": "http://evil.example"}, 403),
        # a plain form cannot send JSON (a script of another site would have to ask first, and is not answered)
        ("POST", "/api/dags/pipeline/trigger", {"CONTENT_TYPE": "text/plain"}, 400),
        # a name of another site that its DNS points at this machine
        ("GET", "/api/dags", {"HTTP_HOST": "rebound.example:8080"}, 403),
        ("GET", "/dags/pipeline/runs/x/tasks/load/logs?map_index=abc", {}, 400),
        ("POST", "/dags/pipeline/trigger", {"CONTENT_LENGTH": "-1"}, 400),
    ],
)
def test_requests_from_other_sites_and_malformed_ones_are_refused(ran, method, path, headers, status):
    app, _ = ran
    got = request(app, method, path, b'{"conf": {}}', **headers)
    assert got[0] == status, got


def test_a_head_request_has_the_headers_of_the_page_and_no_body(ran):
    app, _ = ran
    status, headers, body = request(app, "HEAD", "/api/dags")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 0


def test_airstep_graph_draws_the_uis_picture_as_svg_or_png(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from airstep_cli.main import app

    (tmp_path / "pipeline.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    svg = cli.invoke(app, ["graph", "pipeline.py", "--format", "svg"])
    assert svg.exit_code == 0, svg.output
    drawn = re.findall(r'data-task-id="([^"]+)" data-state="none"', svg.stdout)
    assert drawn == ["extract", "transform.clean", "transform.check", "load"]
    assert 'data-group-id="transform"' in svg.stdout and "clean [ ]" in svg.stdout
    png = cli.invoke(app, ["graph", "pipeline.py", "--format", "png", "-o", "pipeline.png"])
    assert png.exit_code == 0, png.output
    picture = (tmp_path / "pipeline.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(picture[16:20], "big")
    assert width == int(float(re.search(r'width="([\d.]+)"', svg.stdout).group(1)))
    unnamed = cli.invoke(app, ["graph", "pipeline.py", "--format", "png"])
    assert unnamed.exit_code == 1 and "name the file to write with -o FILE.png" in unnamed.output
    other = cli.invoke(app, ["graph", "pipeline.py", "--format", "dot"])
    assert other.exit_code == 1 and "--format dot: mermaid, svg or png" in other.output
    assert cli.invoke(app, ["graph", "pipeline.py"]).stdout.startswith("flowchart LR")
