"""Secrets taken out of text before it is written into the learning queue.

Why and how: docs/design.md section 10, `hivebrain/app/redaction.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Redacted", "redact", "redact_text", "redact_value"]

MARK = "[REDACTED:{kind}]"

_KEY_NAMES = (
    # Names that say "secret" on their own may be glued to a prefix (PGPASSWORD, accessToken,
    # db_password) and carry a suffix (SECRET_KEY_BASE); the short ones (pwd, auth) only
    # after an underscore, so "oauth: yes" stays.
    r"(?:[a-z0-9_]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|secret[_-]?key|client[_-]?secret|private[_-]?key|credentials?)"
    r"(?:_[a-z0-9_]*)?"
    r"|(?:[a-z0-9_]*_)?(?:pwd|auth))"
)


def _mark(kind: str) -> Callable[[re.Match[str]], str]:
    def replace(_match: re.Match[str]) -> str:
        return MARK.format(kind=kind)

    return replace


def _keep_prefix(kind: str) -> Callable[[re.Match[str]], str]:
    """Keep group 1 (what names the secret), replace group 2 (the secret)."""

    def replace(match: re.Match[str]) -> str:
        return match.group(1) + MARK.format(kind=kind)

    return replace


def _assignment(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.startswith("[REDACTED:"):  # already taken by an earlier pattern
        return match.group(0)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}{quote}{MARK.format(kind='assignment')}{quote}"


_PATTERNS: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        "private-key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
            re.DOTALL,
        ),
        _mark("private-key"),
    ),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}"),
        _mark("jwt"),
    ),
    (
        "aws-access-key",
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        _mark("aws-access-key"),
    ),
    (
        "github-token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b"),
        _mark("github-token"),
    ),
    (
        "api-key",
        re.compile(
            r"\b(?:sk-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_-]{20,}"
            r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}"
            r"|AIza[0-9A-Za-z_-]{35}"
            r"|hf_[A-Za-z0-9]{30,}"
            r"|glpat-[A-Za-z0-9_-]{20,})"
        ),
        _mark("api-key"),
    ),
    (
        "bearer",
        re.compile(
            r"(\bBearer\s+|\bAuthorization:\s*(?:Basic|token)\s+)"
            r"(?=[A-Za-z]*[0-9._~+/=-])([A-Za-z0-9._~+/=-]{8,})",
            re.IGNORECASE,
        ),
        _keep_prefix("bearer"),
    ),
    (
        "url-password",
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(?=@)", re.IGNORECASE),
        _keep_prefix("url-password"),
    ),
    (
        "assignment",
        re.compile(
            r"(?P<name>[\"']?\b" + _KEY_NAMES + r"\b[\"']?\s*(?:=>|=|:)\s*)"
            r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|\[REDACTED:[a-z-]+\]|[^\s,;&\"'}\]]+)",
            re.IGNORECASE,
        ),
        _assignment,
    ),
)

KINDS: tuple[str, ...] = tuple(kind for kind, _, _ in _PATTERNS)


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    kinds: tuple[str, ...]  # the kinds of secret found, in pattern order, each once

    @property
    def changed(self) -> bool:
        return bool(self.kinds)


def redact(text: str) -> Redacted:
    """`text` with every recognised secret replaced by `[REDACTED:<kind>]`."""
    found: list[str] = []
    for kind, pattern, replace in _PATTERNS:
        new, count = pattern.subn(replace, text)
        if count and new != text:
            found.append(kind)
        text = new
    return Redacted(text, tuple(found))


def redact_text(text: str) -> str:
    return redact(text).text


_SECRET_KEY = re.compile(r"^" + _KEY_NAMES + r"$", re.IGNORECASE)


def redact_value(value: Any) -> Any:
    """A JSON-like value with secrets redacted in every string; the value of a mapping key
    that names a secret (`password`, `api_key`, ...) is replaced whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _SECRET_KEY.match(key) and item not in (None, ""):
                out[key] = MARK.format(kind="assignment")
            else:
                out[key] = redact_value(item)
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [redact_value(item) for item in value]
    return value
