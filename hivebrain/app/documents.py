"""The files `hivebrain ingest` reads: which ones under the given paths (by suffix, skipping
binary files and tool directories), their kind, their text and their document id."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hivebrain.app.chunking import (
    Kind,
)
from hivebrain.app.chunking import markdown_title as first_heading
from hivebrain.errors import ConfigError

DEFAULT_MAX_BYTES = 5 * 1024 * 1024


BINARY_SNIFF_BYTES = 8192


_MARKDOWN = (".md", ".markdown", ".mdx")


_TEXT = (".txt", ".text", ".rst", ".adoc", ".asciidoc", ".org", ".tex")


_CODE = (
    # programming languages
    *(".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".go", ".rs", ".c", ".h"),
    *(".cc", ".cpp", ".cxx", ".hpp", ".hh", ".java", ".kt", ".kts", ".scala", ".rb", ".php"),
    *(".cs", ".swift", ".m", ".lua", ".pl", ".r", ".jl", ".dart", ".ex", ".exs", ".erl"),
    *(".hs", ".ml", ".clj", ".el", ".zig", ".nim", ".v", ".sql", ".proto", ".graphql"),
    # shells, markup, styles
    *(".sh", ".bash", ".zsh", ".fish", ".ps1", ".html", ".htm", ".css", ".scss", ".vue"),
    *(".svelte",),
    # configuration
    *(".toml", ".yaml", ".yml", ".ini", ".cfg", ".conf", ".json", ".nix", ".tf", ".hcl"),
)


#: Extensions (lower case) read when walking a directory, and the kind of text they hold.
EXTENSIONS: dict[str, Kind] = {
    **dict.fromkeys(_MARKDOWN, "markdown"),
    **dict.fromkeys(_TEXT, "text"),
    **dict.fromkeys(_CODE, "code"),
}
#: Whole file names read when walking a directory.
NAMES: dict[str, Kind] = {
    **dict.fromkeys(("README", "LICENSE", "COPYING", "NOTICE", "AUTHORS", "TODO"), "text"),
    **dict.fromkeys(("Makefile", "Dockerfile", "Containerfile", "Justfile", "Vagrantfile"), "code"),
}
#: Directories never entered (besides every hidden one).
SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", "site-packages", "dist", "build"}
)


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path  # resolved
    kind: Kind


@dataclass
class Found:
    """What a walk found: files to read, directories walked, files passed over by reason."""

    files: list[Candidate] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def kind_of(path: Path) -> Kind | None:
    return NAMES.get(path.name) or EXTENSIONS.get(path.suffix.lower())


def find_files(paths: Iterable[Path | str]) -> Found:
    """Walk `paths` (files and directories). A path that does not exist is a ConfigError,
    raised before anything is read."""
    targets = [Path(p) for p in paths]
    for path in targets:
        if not path.exists():
            raise ConfigError(f"no such file or directory: {path}")
    found = Found()
    seen: set[Path] = set()

    def add(path: Path, kind: Kind) -> None:
        if path not in seen:
            seen.add(path)
            found.files.append(Candidate(path, kind))

    for target in targets:
        path = target.resolve()
        if path.is_dir():
            found.roots.append(path)
            _walk(path, found, add)
        elif path.is_file():
            add(path, kind_of(path) or "text")
        else:
            found.skipped["not a regular file"] += 1
    return found


def _walk(root: Path, found: Found, add: Callable[[Path, Kind], None]) -> None:
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        base = Path(directory)
        for name in sorted(files):
            path = base / name
            kind = kind_of(path)
            if name.startswith("."):
                found.skipped["hidden"] += 1
            elif kind is None:
                found.skipped["extension"] += 1
            elif path.is_symlink() or not path.is_file():
                found.skipped["not a regular file"] += 1
            else:
                add(path, kind)


def document_id(path: Path) -> str:
    """The stable id of the document at `path`: sha256 of its resolved path, 32 hex digits."""
    return hashlib.sha256(os.fsencode(path.resolve())).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    path: Path
    kind: Kind
    title: str
    content_hash: str  # sha256 of the bytes
    size: int
    text: str


def read_document(candidate: Candidate, max_bytes: int) -> Document | str:
    """The document, or why it is skipped ("too large", "binary", "unreadable")."""
    path = candidate.path
    try:
        if path.stat().st_size > max_bytes:
            return "too large"
        data = path.read_bytes()
    except OSError:
        return "unreadable"
    if len(data) > max_bytes:  # it grew since the stat
        return "too large"
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return "binary"
    text = data.decode("utf-8", errors="replace")
    title = (first_heading(text) if candidate.kind == "markdown" else None) or path.name
    return Document(
        id=document_id(path),
        path=path,
        kind=candidate.kind,
        title=title[:200],
        content_hash=hashlib.sha256(data).hexdigest(),
        size=len(data),
        text=text,
    )
