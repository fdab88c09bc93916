"""Splitting a document's text into overlapping chunks (pure functions, no I/O).

Why and how: docs/design.md section 10, `hivebrain/app/chunking.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hivebrain.events.embedding import content_hash

Kind = Literal["markdown", "code", "text"]

DEFAULT_SIZE = 1200
DEFAULT_OVERLAP = 200

# Each pattern's match end is a place to cut: the chunk ends there, the next text starts there.
_WHITESPACE = re.compile(r"\s+")
_LINE_END = re.compile(r"\n")
_BLANK_LINE = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+")
_BEFORE_HEADING = re.compile(r"\n(?=#{1,6}[ \t])")
# A top-level line after a blank line: a def, class, comment or statement at column 0 (not a
# closing bracket) -- in most languages, where one top-level block ends and the next begins.
_BEFORE_TOP_LEVEL = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*(?=[^\s)\]}])")

_BOUNDARIES: dict[str, tuple[tuple[re.Pattern[str], ...], ...]] = {
    # index = strength
    "markdown": ((_WHITESPACE,), (_LINE_END,), (_BLANK_LINE,), (_BEFORE_HEADING,)),
    "code": ((_WHITESPACE,), (_LINE_END,), (_BLANK_LINE,), (_BEFORE_TOP_LEVEL,)),
    "text": ((_WHITESPACE,), (_LINE_END, _SENTENCE_END), (_BLANK_LINE,)),
}


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    start: int
    end: int
    text: str

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def check_sizes(size: int, overlap: int) -> None:
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be at least 0 and below the chunk size, not {overlap}")


def _cut(text: str, kind: str, lo: int, hi: int, *, latest: bool) -> int | None:
    """The place to cut with `lo <= position <= hi` of the strongest boundary there, the latest
    (or the earliest) of equally strong ones; None when the range has no boundary at all."""
    # A match may start a few characters before `lo` and still end inside the range,
    # and a lookahead may need a few characters past `hi`.
    begin, stop = max(0, lo - 8), min(len(text), hi + 8)
    for patterns in reversed(_BOUNDARIES[kind]):  # the strongest first
        best: int | None = None
        for pattern in patterns:
            for m in pattern.finditer(text, begin, stop):
                position = m.end()  # increasing: the matches do not overlap
                if position < lo:
                    continue
                if position > hi:
                    break
                if best is None or (position > best if latest else position < best):
                    best = position
                if not latest:
                    break
        if best is not None:
            return best
    return None


def _end(text: str, kind: str, start: int, size: int, overlap: int) -> int:
    hi = start + size
    if hi >= len(text):
        return len(text)
    lo = start + max(size // 2, overlap + 1)
    cut = _cut(text, kind, lo, hi, latest=True)
    return hi if cut is None else cut


def _next_start(text: str, kind: str, start: int, end: int, overlap: int) -> int:
    if overlap == 0:
        return end
    lo = max(start + 1, end - overlap)
    cut = _cut(text, kind, lo, end - 1, latest=False)  # the earliest: as much overlap as allowed
    return lo if cut is None else cut


def spans(
    text: str, kind: str = "text", size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[tuple[int, int]]:
    """The (start, end) of each chunk of `text`; none for an empty or all-whitespace text."""
    check_sizes(size, overlap)
    if kind not in _BOUNDARIES:
        raise ValueError(f"unknown kind {kind!r}")
    if not text.strip():
        return []
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = _end(text, kind, start, size, overlap)
        out.append((start, end))
        if end >= len(text):
            return out
        start = _next_start(text, kind, start, end, overlap)


def chunk_text(
    text: str, kind: str = "text", size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Split `text` into overlapping chunks (see the module docstring for where it cuts)."""
    return [
        Chunk(i, start, end, text[start:end])
        for i, (start, end) in enumerate(spans(text, kind, size, overlap))
    ]


def chunk_id(document: str, index: int) -> str:
    """A chunk's entity id: usable as a subject token (`[A-Za-z0-9_:-]`, at most 128)."""
    return f"{document}:{index}"


_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def markdown_title(text: str) -> str | None:
    """The text of the first ATX heading (`# Title`), if any."""
    m = _HEADING.search(text)
    return m.group(1).strip() if m else None
