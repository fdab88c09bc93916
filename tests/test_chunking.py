"""Chunking: every character in some chunk, bounded sizes and overlaps, and cuts at the strongest
boundary a chunk's window offers (headings, top-level blocks, paragraphs, then whitespace)."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hivebrain.app.chunking import chunk_id, chunk_text, markdown_title, spans
from hivebrain.events.embedding import content_hash
from hivebrain.events.envelope import TOKEN_RE

KINDS = ("markdown", "code", "text")

words = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "\t", "  \n \n"])


@st.composite
def prose(draw: st.DrawFn) -> str:
    """Words with assorted whitespace between them, sometimes a heading or a top-level line."""
    parts = draw(st.lists(st.tuples(words, separators), min_size=0, max_size=300))
    out = []
    for word, sep in parts:
        out.append(word + sep)
        if sep == "\n\n" and draw(st.booleans()):
            out.append(draw(st.sampled_from(["# ", "## ", "def ", "class "])))
    return "".join(out)


texts = st.one_of(prose(), st.text(max_size=3000))
sizes = st.integers(min_value=1, max_value=400).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
)


def window_low(start: int, size: int, overlap: int) -> int:
    """Where the window a chunk may end in begins (see hivebrain.chunking)."""
    return start + max(size // 2, overlap + 1)


@settings(max_examples=300, deadline=None)
@given(text=texts, kind=st.sampled_from(KINDS), size_overlap=sizes)
def test_chunks_cover_the_text_with_bounded_sizes_and_overlaps(
    text: str, kind: str, size_overlap: tuple[int, int]
) -> None:
    size, overlap = size_overlap
    chunks = chunk_text(text, kind, size, overlap)
    if not text.strip():
        assert chunks == []
        return
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for i, c in enumerate(chunks):
        assert c.index == i and c.text == text[c.start : c.end]
        assert 1 <= len(c.text) <= size
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start, "every chunk moves forward"
        shared = a.end - b.start
        if overlap:
            assert 1 <= shared <= overlap
        else:
            assert shared == 0
        assert a.end >= window_low(a.start, size, overlap), "no needlessly small chunk"
    # every character is in some chunk: the chunks, less what each shares with the one before
    covered = chunks[0].text + "".join(
        b.text[a.end - b.start :] for a, b in itertools.pairwise(chunks)
    )
    assert covered == text


@settings(max_examples=300, deadline=None)
@given(text=texts, kind=st.sampled_from(KINDS), size_overlap=sizes)
def test_a_chunk_ends_mid_word_only_when_its_window_has_no_whitespace(
    text: str, kind: str, size_overlap: tuple[int, int]
) -> None:
    size, overlap = size_overlap
    for start, end in spans(text, kind, size, overlap)[:-1]:
        window = text[window_low(start, size, overlap) - 1 : start + size]
        if any(ch.isspace() for ch in window):
            assert text[end - 1].isspace(), (start, end, window)
        else:
            assert end == start + size


def strong_cuts(text: str, pattern: str, lo: int, hi: int) -> list[int]:
    return [m.end() for m in re.finditer(pattern, text) if lo <= m.end() <= hi]


@settings(max_examples=200, deadline=None)
@given(text=prose(), size_overlap=sizes.filter(lambda so: so[0] >= 20))
def test_markdown_cuts_before_a_heading_when_the_window_has_one(
    text: str, size_overlap: tuple[int, int]
) -> None:
    size, overlap = size_overlap
    for start, end in spans(text, "markdown", size, overlap)[:-1]:
        lo, hi = window_low(start, size, overlap), start + size
        headings = strong_cuts(text, r"\n(?=#{1,6}[ \t])", lo, hi)
        if headings:
            assert end == max(headings)
        elif strong_cuts(text, r"\n[ \t]*\n(?:[ \t]*\n)*", lo, hi):
            assert re.search(r"\n[ \t]*\n[ \t\n]*$", text[:end])


@settings(max_examples=200, deadline=None)
@given(text=prose(), size_overlap=sizes.filter(lambda so: so[0] >= 20))
def test_code_cuts_before_a_top_level_line_when_the_window_has_one(
    text: str, size_overlap: tuple[int, int]
) -> None:
    size, overlap = size_overlap
    for start, end in spans(text, "code", size, overlap)[:-1]:
        lo, hi = window_low(start, size, overlap), start + size
        if strong_cuts(text, r"\n[ \t]*\n(?:[ \t]*\n)*(?=[^\s)\]}])", lo, hi):
            assert re.search(r"\n[ \t]*\n[ \t\n]*$", text[:end])
            assert not text[end].isspace()


def test_a_python_module_is_cut_between_top_level_definitions() -> None:
    functions = [
        f"def function_{i}(x):\n    '''Doc {i}.'''\n    if x:\n        return {i}\n    return x\n"
        for i in range(40)
    ]
    source = "import os\n\n\n" + "\n\n".join(functions)
    chunks = chunk_text(source, "code", size=300, overlap=50)
    assert len(chunks) > 5
    for c in chunks[:-1]:
        assert source[c.end :].startswith("def function_"), repr(source[c.end : c.end + 20])


def test_markdown_sections_stay_whole_when_they_fit() -> None:
    sections = [
        f"## Section {i}\n\n" + f"Sentence number {i} about things. " * 8 for i in range(12)
    ]
    text = "# Title\n\n" + "\n\n".join(sections)
    chunks = chunk_text(text, "markdown", size=800, overlap=100)
    for c in chunks[:-1]:
        assert text[c.end :].startswith("## Section")
    assert markdown_title(text) == "Title"


def test_plain_text_prefers_paragraphs_then_sentences() -> None:
    paragraph = "The quick fox jumps. It lands softly. Nobody sees it happen at all. " * 3
    text = "\n\n".join([paragraph.strip()] * 10)
    for c in chunk_text(text, "text", size=500, overlap=60)[:-1]:
        assert text[: c.end].endswith("\n\n")
    one_line = "Alpha beta gamma. " * 100
    for c in chunk_text(one_line, "text", size=200, overlap=30)[:-1]:
        assert one_line[: c.end].endswith(". ")


def test_text_without_whitespace_is_cut_at_the_size() -> None:
    chunks = chunk_text("x" * 1000, "text", size=300, overlap=50)
    assert [len(c.text) for c in chunks[:-1]] == [300] * (len(chunks) - 1)
    assert all(b.start == a.end - 50 for a, b in itertools.pairwise(chunks))


def test_defaults_and_bad_sizes() -> None:
    text = "word " * 2000
    chunks = chunk_text(text, "text")
    assert all(len(c.text) <= 1200 for c in chunks) and 8 <= len(chunks) <= 12
    assert (
        chunks[0].content_hash == content_hash(chunks[0].text) and len(chunks[0].content_hash) == 64
    )
    with pytest.raises(ValueError):
        chunk_text(text, "text", size=100, overlap=100)
    with pytest.raises(ValueError):
        chunk_text(text, "text", size=0, overlap=0)
    with pytest.raises(ValueError):
        chunk_text(text, "pdf")


def test_chunk_ids_are_subject_tokens() -> None:
    assert TOKEN_RE.match(chunk_id("0123456789abcdef0123456789abcdef", 999_999))


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Hello world\n\ntext", "Hello world"),
        ("intro\n\n## Second level ##\n", "Second level"),
        ("#hashtag is not a heading\n", None),
        ("    # indented code\n", None),
    ],
)
def test_markdown_title(text: str, title: str | None) -> None:
    assert markdown_title(text) == title
