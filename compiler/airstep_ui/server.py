"""`airstep ui`: a WSGI application over the records (the standard library's server runs it on this
machine; nothing to deploy). Pages and their data, at stable URLs:

    /                                                    DAGs                 /api/dags
    /dags/<dag_id>                                       the grid             /api/dags/<dag_id>
    /dags/<dag_id>/runs/<run_id>                         graph, Gantt, tasks  /api/dags/<dag_id>/runs/<run_id>
    /dags/<dag_id>/runs/<run_id>/tasks/<task>/logs       a try's log          /api/.../logs  (?map_index=&try=)
    POST /dags/<dag_id>/trigger (the form)                a run               POST /api/dags/<dag_id>/trigger
"""

from __future__ import annotations

import json
import socketserver
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from airstep.errors import ParamValidationError
from airstep_cli.errors import UserError
from airstep_ui import api, pages, pictures
from airstep_ui.records import Records

StartResponse = Callable[..., Any]
MAX_BODY_BYTES = 1_000_000  # a trigger's conf
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class UiApp:
    """The UI as a WSGI callable over `records`."""

    def __init__(self, records: Records, hosts: frozenset[str] = LOOPBACK) -> None:
        """`hosts`: the names the browser may reach it by; a request for any other (a site whose DNS
        name was pointed here) is refused, so other sites can neither read runs nor start them."""
        self.records = records
        self.hosts = hosts

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        answer = self._answer(environ, method, start_response)
        return [b""] if method == "HEAD" else answer  # a HEAD gets the headers (its length too), no body

    def _answer(self, environ: dict[str, Any], method: str, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/") or "/"
        parts = [p for p in path.split("/") if p]
        is_api = parts[:1] == ["api"]
        if is_api:
            parts = parts[1:]
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        triggering = len(parts) == 3 and parts[0] == "dags" and parts[2] == "trigger"
        if _host(environ) not in self.hosts:
            return _respond(
                start_response, "403 Forbidden", "text/plain", "this UI answers at this machine's names only"
            )
        if method not in ("GET", "HEAD") and not (method == "POST" and triggering):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD, POST"), ("Content-Length", "0")])
            return [b""]
        if method == "POST" and not _same_origin(environ):
            return _respond(
                start_response, "403 Forbidden", "text/plain", "runs are triggered from this UI's own pages"
            )
        try:
            if triggering:
                if method != "POST":
                    raise api.NotFound(f"POST to /{'/'.join(parts)} to trigger a run")
                return self._trigger(parts[1], environ, is_api, start_response)
            return self._route(parts, query, is_api, start_response)
        except api.NotFound as missing:
            if is_api:
                return _respond(start_response, "404 Not Found", "application/json", _error_json(missing))
            return _respond(start_response, "404 Not Found", "text/html", pages.not_found_page(str(missing)))
        except UserError as refused:
            message = "; ".join(refused.lines)
            if is_api:
                return _respond(start_response, "409 Conflict", "application/json", json.dumps({"error": message}))
            return _respond(start_response, "409 Conflict", "text/html", pages.not_found_page(message))
        except BadRequest as bad:
            return _respond(start_response, "400 Bad Request", "text/plain", str(bad))
        except Exception:  # noqa: BLE001 - one failed request must not stop the server
            traceback.print_exc()
            return _respond(start_response, "500 Internal Server Error", "text/plain", "the records could not be read")

    def _route(
        self, parts: list[str], query: dict[str, str], is_api: bool, start_response: StartResponse
    ) -> Iterable[bytes]:
        records = self.records
        if not is_api and parts == []:
            return _html(start_response, pages.dags_page(api.dags(records)))
        if is_api and parts == ["dags"]:
            return _json(start_response, api.dags(records))
        if len(parts) == 2 and parts[0] == "dags":
            data = api.dag(records, parts[1])
            if is_api:
                return _json(start_response, data)
            form = pages.trigger_form(parts[1], api.params(records, parts[1]), message=query.get("notice", ""))
            return _html(start_response, pages.grid_page(data, form))
        if len(parts) == 4 and parts[0] == "dags" and parts[2] == "runs":
            dag_id, run_id = parts[1], parts[3]
            data = api.run(records, dag_id, run_id)
            if is_api:
                return _json(start_response, data)
            return _html(start_response, self._run_page(data))
        if len(parts) == 7 and parts[0] == "dags" and parts[2] == "runs" and parts[4] == "tasks" and parts[6] == "logs":
            map_index = _number(query, "map_index", -1)
            try_number = _number(query, "try", None)
            data = api.log(records, parts[1], parts[3], parts[5], map_index, try_number)
            return _json(start_response, data) if is_api else _html(start_response, pages.log_page(data))
        raise api.NotFound(f"no page at /{'api/' if is_api else ''}{'/'.join(parts)}")

    def _trigger(
        self, dag_id: str, environ: dict[str, Any], is_api: bool, start_response: StartResponse
    ) -> Iterable[bytes]:
        """A run asked for with the trigger form (or /api with {"conf": {...}}): started if the DAG's
        params accept its conf, else refused with the param named (400)."""
        fields = api.params(self.records, dag_id)
        body = _body(environ)
        if is_api:
            if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
                raise BadRequest('send JSON (Content-Type: application/json): {"conf": {...}}')
            try:
                conf = json.loads(body or b"{}").get("conf", {})
            except (ValueError, AttributeError):
                raise BadRequest('the body must be JSON: {"conf": {...}}') from None
            if not isinstance(conf, dict):
                raise BadRequest("conf must be a JSON object")
            form: dict[str, str] = {}
        else:
            form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            conf = api.conf_from_form(fields, form)
        try:
            started = api.trigger(self.records, dag_id, conf)
        except ParamValidationError as refused:
            if is_api:
                return _respond(start_response, "400 Bad Request", "application/json", _error_json(refused))
            data = api.dag(self.records, dag_id)
            message = f"No run started: {refused}"
            page = pages.grid_page(data, pages.trigger_form(dag_id, fields, form, message))
            return _respond(start_response, "400 Bad Request", "text/html", page)
        if is_api:
            return _json(start_response, started)
        notice = f"Run {started['run_id']} {started['state']}" if started["run_id"] else "Run starting"
        location = f"{pages.dag_href(dag_id)}?{urlencode({'notice': notice})}"
        start_response("303 See Other", [("Location", location), ("Content-Length", "0")])
        return [b""]

    def _run_page(self, data: dict[str, Any]) -> str:
        dag = next(d for d in self.records.dags() if d.dag_id == data["dag_id"])
        model = self.records.model(dag)
        instances = self.records.instances(data["dag_id"], data["run_id"], with_tries=True)
        graph = pictures.graph_svg(model, instances) if model is not None else "<p class=muted>(no graph model)</p>"
        return pages.run_page(data, graph, pictures.gantt_svg(instances, model, data["start"]))


class BadRequest(ValueError):
    """A request the UI cannot read: 400, saying why."""


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("Content-Length is not a number") from None
    if not 0 <= length <= MAX_BODY_BYTES:
        raise BadRequest(f"a trigger's body is 0 to {MAX_BODY_BYTES:,} bytes")
    return environ["wsgi.input"].read(length) if length else b""


def _number(query: dict[str, str], name: str, default: int | None) -> int | None:
    try:
        return int(query[name]) if name in query else default
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {query[name]!r}") from None


def _host(environ: dict[str, Any]) -> str:
    """The name the request was sent to (its Host header, without the port)."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    return host.rsplit(":", 1)[0].strip("[]") if not host.endswith("]") else host.strip("[]")


def _same_origin(environ: dict[str, Any]) -> bool:
    """Whether a POST comes from this UI's own pages (a browser says where a request comes from:
    a form on another site, even posting to 127.0.0.1, is refused)."""
    site = environ.get("HTTP_SEC_FETCH_SITE")
    if site is not None:
        return site in ("same-origin", "none")
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return True  # not sent by a browser's cross-site form (curl, scripts): they could post anyway
    return urlsplit(origin).netloc == environ.get("HTTP_HOST")


def _forbidden(start_response: StartResponse, why: str) -> Iterable[bytes]:
    return _respond(start_response, "403 Forbidden", "text/plain", why)


def _error_json(error: Exception) -> str:
    return json.dumps({"error": str(error)})


def _html(start_response: StartResponse, text: str) -> Iterable[bytes]:
    return _respond(start_response, "200 OK", "text/html", text)


def _json(start_response: StartResponse, data: Any) -> Iterable[bytes]:
    return _respond(start_response, "200 OK", "application/json", json.dumps(data, indent=1))


def _respond(start_response: StartResponse, status: str, kind: str, text: str) -> Iterable[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", f"{kind}; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def serve(app: UiApp, host: str, port: int) -> WSGIServer:
    """A server for `app` on host:port (0: any free port), not yet serving (call serve_forever)."""
    return make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
