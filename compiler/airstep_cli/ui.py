"""`airstep ui`: the runs of this folder (or of a deployed stack) in the browser, served from here."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer

from airstep_cli.errors import UserError
from airstep_cli.metadata import LOCAL_STATE, open_target
from airstep_cli.options import RegionOption, StackOption
from airstep_cli.output import err, fail


def ui(
    stack: StackOption = None,
    region: RegionOption = None,
    host: Annotated[str, typer.Option(help="the address to listen on (this machine only, by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the port to listen on (0: any free one)")] = 8080,
) -> None:
    """Serve the UI: DAGs, the grid of runs, each run's graph, Gantt chart and task logs. It reads the
    local runs of this folder, or a deployed stack with your AWS credentials; nothing is deployed."""
    from airstep_ui.records import LocalRecords, StackRecords
    from airstep_ui.server import LOOPBACK, UiApp, serve

    with ExitStack() as stack_of_contexts:
        try:
            if stack:
                target = stack_of_contexts.enter_context(open_target(stack, region))
                records: LocalRecords | StackRecords = StackRecords(target, region)
            else:
                records = LocalRecords(LOCAL_STATE.parent)
            server = serve(UiApp(records, LOOPBACK | {host}), host, port)
        except UserError as exc:
            fail(exc.lines)
        except OSError as exc:
            fail([f"cannot listen on {host}:{port}: {exc.strerror or exc}"])
        where = f"http://{host}:{server.server_port}/"
        err.print(f"airstep ui: {where} ({'stack ' + stack if stack else 'local runs in ' + str(LOCAL_STATE.parent)})")
        if host not in LOOPBACK:
            err.print(
                f"[yellow]anyone who can reach {host}:{server.server_port} sees the runs and can start runs[/yellow]"
            )
        err.print("Ctrl-C stops it")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
