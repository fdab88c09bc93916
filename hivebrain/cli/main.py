"""The `hivebrain` command: one click group, each command from its own module; every library
error becomes one line on stderr and a non-zero exit (see `hivebrain.errors`)."""

from __future__ import annotations

import sys

import click
import structlog
from pydantic import ValidationError

from hivebrain import logs
from hivebrain.cli import (
    agent,
    cache,
    consolidate,
    context,
    creds,
    dead_letters,
    demo,
    devices,
    edit,
    erase,
    events,
    forget,
    import_,
    ingest,
    knowledge,
    mcp,
    memories,
    move,
    node,
    projections,
    publish,
    recall,
    remember,
    session,
    stats,
    up,
)
from hivebrain.config import load_settings
from hivebrain.errors import HivebrainError

log = structlog.get_logger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="HIVEBRAIN_HOME", help="Node data directory.")
@click.option("--node", help="This node's name (default: the host name).")
@click.option("--nats", "nats_url", help="Use this NATS server instead of the embedded one.")
@click.option("--port", type=int, help="Client port of the embedded nats-server [4222].")
@click.option("--nats-server", "nats_binary", help="Path of a nats-server binary to run.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
@click.option(
    "--log-level",
    default="warning",
    type=click.Choice(["debug", "info", "warning", "error"]),
    show_default=True,
)
@click.version_option(package_name="hivebrain")
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: str | None,
    node: str | None,
    nats_url: str | None,
    port: int | None,
    nats_binary: str | None,
    json_output: bool,
    log_level: str,
) -> None:
    """hivebrain: one offline-first memory shared by the AI programs of a homelab."""
    logs.configure(log_level)
    ctx.obj = load_settings(
        data_dir=data_dir,
        node=node,
        nats_url=nats_url,
        port=port,
        nats_binary=nats_binary,
        json_output=json_output,
    )


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"{where}: {first['msg']}" if where else first["msg"]
        click.echo(f"error: {message}", err=True)
        sys.exit(2)
    except HivebrainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug, not bad input: one line, details with --log-level debug
        log.debug("internal_error", exc_info=True)
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


for _command in (
    agent.agent,
    cache.cache,
    consolidate.consolidate,
    context.context,
    creds.creds,
    dead_letters.dead_letters,
    demo.demo,
    devices.devices,
    edit.edit,
    erase.erase,
    events.events,
    forget.forget,
    import_.import_,
    ingest.ingest,
    knowledge.knowledge,
    mcp.mcp_command,
    memories.memories,
    move.move,
    node.node_group,
    projections.projections,
    publish.publish,
    recall.recall,
    remember.remember,
    session.session,
    stats.stats,
    up.up,
):
    cli.add_command(_command)
