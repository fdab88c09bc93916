"""Durations written as text, the one parser of them: `90` (seconds), `90s`, `15m`, `1.5h`, `7d`,
`2w`; and back to the shortest such text."""

from __future__ import annotations

import re

from hivebrain.errors import ConfigError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(
    text: str | float, *, what: str = "duration", at_least: float | None = None
) -> float:
    """Seconds of `text`: more than 0, and at least `at_least` when given; a ConfigError
    naming `what` otherwise."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        found = _DURATION.match(text)
        if found is None:
            raise ConfigError(f"bad {what} {text!r}: use seconds or e.g. 90s, 30m, 1.5h, 7d, 2w")
        seconds = float(found.group(1)) * UNITS[found.group(2).lower() or "s"]
    if at_least is not None and seconds < at_least:
        unit = "second" if at_least == 1 else "seconds"
        raise ConfigError(f"bad {what} {text!r}: at least {at_least:g} {unit}")
    if seconds <= 0:
        raise ConfigError(f"bad {what} {text!r}: it must be more than 0 seconds")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest text `parse_duration` reads back as `seconds` ("1w", "36h", "90s")."""
    for unit in ("w", "d", "h", "m"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
