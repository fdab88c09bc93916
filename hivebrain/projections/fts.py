"""Turning user text into a safe FTS5 query, optionally without its most common words.

Why and how: docs/design.md section 10, `hivebrain/projections/fts.py`.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence

from .sqlite import connect, sqlite_errors

#: The tokenizer of every FTS5 table of the projection and of the one that tokenizes queries.
TOKENIZER = "porter unicode61 remove_diacritics 2"

#: A word is common, and left out of a pruned query, when found in more documents than
#: `max(COMMON_MIN_DOCS, COMMON_SHARE * rows)`. Measured over the bench's 100,000 memories
#: (hybrid recall, 300 queries): 10% cuts p99 from 21 to 17 ms and keeps 99% of the unpruned
#: top 10 (5%: 16.5 ms, 97%; 20%: 20 ms, 99.9%). A word in fewer than 1,000 documents costs
#: about a millisecond to score, so small indexes are never pruned.
COMMON_MIN_DOCS = 1000
COMMON_SHARE = 0.1

_STALE_SHARE = 1 / 64  # cached counts are read again once the rows changed by this share
_CACHE_LIMIT = 4096  # words (or terms per table) cached; cleared when full

_WORD = re.compile(r"\w+", re.UNICODE)
_lock = threading.Lock()  # the tokenizer's table is filled and emptied under it
_tokenizer: sqlite3.Connection | None = None  # in memory, made on first use
_word_terms: dict[str, tuple[str, ...]] = {}
#: (database file, FTS table) -> (its rows when read, term -> documents holding it)
_doc_counts: dict[tuple[str, str], tuple[int, dict[str, int]]] = {}


def query_words(text: str) -> list[str]:
    """The distinct words of `text`, lowercased, in order."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))


def or_query(words: Iterable[str]) -> str | None:
    """An FTS5 MATCH expression that ORs `words`, each quoted as a string (None: no words)."""
    quoted = [f'"{w}"' for w in words]
    return " OR ".join(quoted) if quoted else None


def match_query(text: str) -> str | None:
    """An FTS5 MATCH expression that ORs every word of `text`, each quoted as a string.

    Operators (`AND`, `NEAR`, `*`, `:`, quotes, parentheses) in the text are just words or
    punctuation: nothing the user types can be FTS syntax. None when `text` has no words.
    """
    return or_query(query_words(text))


def common_limit(rows: int) -> int:
    """The most documents a word may be found in and still be kept in a pruned query."""
    return max(COMMON_MIN_DOCS, int(COMMON_SHARE * rows))


def uncommon_words(words: Sequence[str], docs: Mapping[str, int], limit: int) -> list[str]:
    """`words` (in order) found in at most `limit` documents (`docs`: word -> documents).

    When that leaves no word found in the index at all, the rarest word that is found is kept
    too, so a query made only of common words still matches what it matched before."""
    kept = [w for w in words if docs.get(w, 0) <= limit]
    if any(docs.get(w, 0) > 0 for w in kept):
        return kept
    found = [w for w in words if docs.get(w, 0) > 0]
    if not found:
        return kept
    rarest = min(found, key=lambda w: docs[w])
    return [w for w in words if w in kept or w == rarest]


def pruned_match_query(conn: sqlite3.Connection, table: str, text: str) -> str | None:
    """`match_query(text)` without the words common in FTS5 table `table` (see the module
    docstring). Where the counts cannot be read (no TEMP tables, say), every word is kept."""
    words = query_words(text)
    if len(words) < 2:
        return or_query(words)  # a single word is kept anyway
    try:
        database, rows = _table_rows(conn, table)
        limit = common_limit(rows)
        if rows <= limit:
            return or_query(words)  # no word can be found in more documents than that
        terms = _terms_of(words)
        counts = _term_docs(conn, database, table, rows, {t for ts in terms.values() for t in ts})
    except sqlite_errors():
        return or_query(words)
    # A word of several terms is a phrase: found in at most as many documents as its rarest.
    docs = {w: min((counts.get(t, 0) for t in terms[w]), default=0) for w in words}
    return or_query(uncommon_words(words, docs, limit))


def _table_rows(conn: sqlite3.Connection, table: str) -> tuple[str, int]:
    """(the main database's file, the rows in FTS5 table `table`): one cheap statement.

    The row count is the first varint of the table's averages record (`<table>_data` row 1,
    FTS5's on-disk format, described in its source, the N of its BM25), so no scan is needed."""
    row = conn.execute(
        "SELECT (SELECT file FROM pragma_database_list WHERE name = 'main'), "
        f'(SELECT block FROM "{table}_data" WHERE id = 1)'
    ).fetchone()
    return str(row[0] or ""), _varint(bytes(row[1] or b""))


def _varint(data: bytes) -> int:
    """The SQLite varint at the start of `data` (0 when empty)."""
    value = 0
    for i, byte in enumerate(data[:9]):
        if i == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    return value


def _terms_of(words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each word's index terms, in order, as the FTS5 tokenizer makes them (cached)."""
    missing = [w for w in words if w not in _word_terms]
    if missing:
        terms = _tokenize(missing)
        if len(_word_terms) + len(missing) > _CACHE_LIMIT:
            _word_terms.clear()
        _word_terms.update(terms)
    return {w: _word_terms.get(w, ()) for w in words}


def _tokenize(words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Index terms of `words`: each is a row of an FTS5 table with the same tokenizer, read
    back through an fts5vocab 'instance' table (term, row, offset) and removed again. The
    table lives in a private in-memory database: tokenizing writes, and the store's own
    connection may be inside another thread's write transaction."""
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            conn = connect(":memory:")
            conn.execute(f"CREATE VIRTUAL TABLE words USING fts5(word, tokenize = '{TOKENIZER}')")
            conn.execute("CREATE VIRTUAL TABLE word_terms USING fts5vocab(words, 'instance')")
            _tokenizer = conn
        _tokenizer.executemany("INSERT INTO words (rowid, word) VALUES (?, ?)", enumerate(words, 1))
        try:
            found = _tokenizer.execute("SELECT doc, term FROM word_terms ORDER BY doc, offset")
            terms: dict[int, list[str]] = {}
            for doc, term in found.fetchall():
                terms.setdefault(int(doc), []).append(str(term))
        finally:
            _tokenizer.execute("DELETE FROM words")
    return {w: tuple(terms.get(i, ())) for i, w in enumerate(words, 1)}


def _term_docs(
    conn: sqlite3.Connection, database: str, table: str, rows: int, terms: set[str]
) -> dict[str, int]:
    """Documents of `table` holding each of `terms`, from its fts5vocab 'row' table; cached
    per database file (none for a database without one) until the rows change by
    `_STALE_SHARE`."""
    key = (database, table)
    read_at, cached = _doc_counts.get(key, (rows, {}))
    if abs(rows - read_at) > rows * _STALE_SHARE or len(cached) + len(terms) > _CACHE_LIMIT:
        read_at, cached = rows, {}
    missing = [t for t in terms if t not in cached]
    if missing:
        vocab = f'temp."{table}_rows"'
        conn.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {vocab} USING fts5vocab(main, {table}, 'row')"
        )
        for term in missing:
            found = conn.execute(f"SELECT doc FROM {vocab} WHERE term = ?", (term,)).fetchone()
            cached[term] = int(found[0]) if found else 0
    if database:
        _doc_counts[key] = (read_at, cached)
    return {t: cached[t] for t in terms}
