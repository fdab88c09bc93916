"""The error tree in hivebrain/errors.py is drawn complete, with each class under its parent
and the exit code each one gives."""

from __future__ import annotations

import re

from hivebrain import errors
from hivebrain.errors import HivebrainError


def drawn() -> dict[str, tuple[str | None, int | None]]:
    """name -> (parent, exit code) as the module docstring draws them."""
    doc = errors.__doc__ or ""
    out: dict[str, tuple[str | None, int | None]] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.match(r"^(\s*(?:[│ ]   )*(?:[├└]── )?)(\w+)\s.*?(?:exit (\d))?$", line)
        if not found or not found.group(2)[0].isupper() or "  " not in line:
            continue
        depth = len(found.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        code = int(found.group(3)) if found.group(3) else None
        out[found.group(2)] = (parent, code)
        stack.append((depth, found.group(2)))
    return out


def test_every_error_is_drawn_under_its_parent() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, HivebrainError)
    }
    tree = drawn()
    assert set(tree) == set(classes)
    for name, cls in classes.items():
        parent, code = tree[name]
        assert parent == (None if cls is HivebrainError else cls.__mro__[1].__name__), name
        if code is not None:
            assert cls.exit_code == code, name


def test_not_found_is_not_bad_input() -> None:
    assert errors.NotFound.exit_code == 3
    assert not issubclass(errors.NotFound, errors.ConfigError)
