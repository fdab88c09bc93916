"""The `hivebrain` command. One click group; every library error becomes one line on stderr
and a non-zero exit (2 for bad input)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import click
import structlog
from pydantic import ValidationError

from hivebrain import logs
from hivebrain.config import Settings, load_settings
from hivebrain.errors import ConfigError, HivebrainError

T = TypeVar("T")
log = structlog.get_logger(__name__)


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def emit(settings: Settings, data: Any, text: Callable[[Any], str] | str) -> None:
    """Print `data` as JSON with --json, else the human text."""
    if settings.json_output:
        click.echo(json.dumps(data, indent=None, default=str))
    else:
        click.echo(text(data) if callable(text) else text)


_pass_settings = click.make_pass_decorator(Settings)
F = TypeVar("F", bound=Callable[..., Any])


def _json_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        settings = ctx.find_object(Settings)
        if settings is not None:
            ctx.obj = settings.model_copy(update={"json_output": True})


def pass_settings(f: F) -> F:
    """Pass the Settings to a command, and accept `--json` after the command's name too."""
    option = click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_json_flag,
        help="Machine-readable output.",
    )
    return cast(F, option(_pass_settings(f)))


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


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# Commands live in their own modules and register themselves on `cli`.
from hivebrain.cli import (  # noqa: E402,F401
    agent,
    consolidate,
    context,
    creds,
    demo,
    devices,
    events,
    import_,
    ingest,
    interactions,
    memories,
    memory,
    session,
    up,
)
from hivebrain.cli import node as node_commands  # noqa: E402,F401
