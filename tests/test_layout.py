"""The package's shape, as docs/design.md draws it: no import cycle, each layer imports only
the layers below it, and every module is small enough to read in one sitting.

Imports are read from the source (every `import` statement, at any depth, function-local and
TYPE_CHECKING ones included), so an import moved into a function to hide a cycle still counts.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hivebrain"
MAX_LINES = 400

#: Modules at the top of the package that every layer may use; they import only each other
#: and `events` (the configuration names an event's node).
FOUNDATION = {"errors", "background", "durations", "logs", "config"}

#: What each layer may import besides itself and the foundation.
ALLOWED: dict[str, set[str]] = {
    "events": set(),
    "projections": {"events"},
    "transport": {"events"},
    "embedding": set(),
    "actors": {"events", "projections", "transport", "embedding"},
    "node": {"events", "projections", "transport", "embedding", "actors"},
    "app": {"events", "projections", "transport", "embedding", "node"},
    "mcp": {"events", "projections", "transport", "embedding", "node", "app"},
    "demo": {"events", "projections", "transport", "node"},
    "cli": {"events", "projections", "transport", "embedding", "actors", "node", "app", "mcp"}
    | {"demo"},
}


def module_name(path: Path) -> str:
    parts = ["hivebrain", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The hivebrain modules `name` imports (a name imported from a package that is itself a
    module counts as that module)."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            targets = [
                f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules() else origin
                for a in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t in modules() and t != name}
    return found


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "hivebrain"


def test_no_import_cycle() -> None:
    graph = {name: imports_of(name) for name in modules()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_layers_import_only_what_is_below_them() -> None:
    wrong = []
    for name in modules():
        own = layer(name)
        if own == "hivebrain":
            continue
        if own in FOUNDATION:  # a top-level module
            allowed = FOUNDATION | {"events", "embedding"}
        else:
            allowed = {own} | FOUNDATION | ALLOWED[own]
        for target in sorted(imports_of(name)):
            if layer(target) not in allowed:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_every_layer_is_drawn() -> None:
    found = {layer(n) for n in modules()} - {"hivebrain"} - FOUNDATION
    assert found == set(ALLOWED)


def test_modules_are_small() -> None:
    long = {
        name: count
        for name, path in modules().items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_layering_test_sees_imports() -> None:
    """The checks above would pass on a package they could not read."""
    assert len(modules()) > 100
    assert "hivebrain.events" in imports_of("hivebrain.actors.embedder")
    assert "hivebrain.cli.recall" in imports_of("hivebrain.cli.main")
    assert "hivebrain.transport.event_writer" in imports_of("hivebrain.actors.actor")


DOCS = PACKAGE.parent / "docs"


def test_docs_named_in_docstrings_exist() -> None:
    """A module docstring that sends the reader to docs/ sends them somewhere real: the file,
    the section number, and for section 10 of the design the module's own note."""
    design = (DOCS / "design.md").read_text()
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", design, flags=re.M)}
    missing = []
    for name, path in modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        for ref in re.findall(r"docs/([\w.-]+\.md)", doc):
            if not (DOCS / ref).exists():
                missing.append(f"{name}: docs/{ref}")
        for number in re.findall(r"docs/design\.md section (\d+)", doc):
            if int(number) not in sections:
                missing.append(f"{name}: docs/design.md section {number}")
        for note in re.findall(r"docs/design\.md section 10, `([^`]+)`", doc):
            if f"### `{note}`" not in design:
                missing.append(f"{name}: the design note of {note}")
    assert missing == []
