"""`hivebrain publish`: any event, from any node."""

from __future__ import annotations

import json
import sys

import click

from hivebrain.app.brain import Written
from hivebrain.app.connection import open_brain
from hivebrain.cli.support import (
    emit,
    pass_settings,
    run,
)
from hivebrain.config import Settings
from hivebrain.errors import ConfigError
from hivebrain.events import payload_class


@click.command()
@click.argument("event_type")
@click.argument("payload", required=False, default="-")
@click.option("--entity", help="The entity the event changes (default: a new id).")
@pass_settings
def publish(settings: Settings, event_type: str, payload: str, entity: str | None) -> None:
    """Publish an event of EVENT_TYPE with a JSON PAYLOAD ('-' or nothing: read stdin)."""
    cls = payload_class(event_type)
    raw = sys.stdin.read() if payload == "-" else payload
    try:
        fields = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"payload is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ConfigError("payload must be a JSON object")
    body = cls.model_validate_json(raw)  # JSON mode: bytes fields are base64

    async def go() -> Written:
        async with open_brain(settings) as brain:
            return await brain.publish(body, entity=entity)

    emit(settings, run(go()).as_dict(), lambda d: f"published {d['type']} {d['id']} (#{d['seq']})")
