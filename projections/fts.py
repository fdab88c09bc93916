"""Turning user text into a safe FTS5 query."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)


def match_query(text: str) -> str | None:
    """An FTS5 MATCH expression that ORs every word of `text`, each quoted as a string.

    Operators (`AND`, `NEAR`, `*`, `:`, quotes, parentheses) in the text are just words or
    punctuation: nothing the user types can be FTS syntax. None when `text` has no words.
    """
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in words)
