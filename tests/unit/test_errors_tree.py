"""The exception tree drawn in ``streamer/errors.py`` is whole and true.

Every exception class defined anywhere under ``streamer`` must derive from ``StreamerError``
and be drawn in the tree of ``streamer.errors``' docstring, under its real parent, with its
module named when it lives outside ``streamer.errors``. A new exception class that is not
drawn fails here, so the tree cannot silently go stale.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import streamer
import streamer.errors
from streamer.errors import StreamerError

# A tree line: a name after "── ", or the root at the start of the diagram.
TREE_LINE = re.compile(r"^(?P<indent>\s*(?:[│ ]   )*)(?:[├└]── )?(?P<name>[A-Z]\w+)\b(?P<rest>.*)$")


def streamer_modules() -> list[ModuleType]:
    """Every module of the package (``__main__`` modules excluded: importing them runs them)."""
    modules = [streamer]
    for info in pkgutil.walk_packages(streamer.__path__, "streamer."):
        if info.name.endswith(".__main__"):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def defined_exceptions() -> dict[str, type[BaseException]]:
    """Exception classes by name, each from the module that defines it."""
    found: dict[str, type[BaseException]] = {}
    for module in streamer_modules():
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[obj.__qualname__] = obj
    return found


def drawn_tree() -> dict[str, tuple[str | None, str]]:
    """``{name: (drawn parent, rest of the line)}`` from the docstring's diagram."""
    doc = streamer.errors.__doc__ or ""
    diagram = doc.split("::", 1)[1].split("\n\n")[1]
    parents: dict[str, tuple[str | None, str]] = {}
    stack: list[str] = []
    base_indent: int | None = None
    for line in diagram.splitlines():
        match = TREE_LINE.match(line)
        assert match, f"unreadable tree line: {line!r}"
        name = match["name"]
        offset = match.start("name")
        if base_indent is None:
            base_indent = offset
        depth = (offset - base_indent) // 4
        del stack[depth:]
        parents[name] = (stack[-1] if stack else None, match["rest"])
        stack.append(name)
    return parents


def test_every_exception_derives_from_streamer_error() -> None:
    strays = [
        f"{cls.__module__}.{name}"
        for name, cls in defined_exceptions().items()
        if not issubclass(cls, StreamerError)
    ]
    assert not strays, f"exceptions outside the StreamerError tree: {strays}"


def test_every_exception_is_drawn_under_its_parent() -> None:
    drawn = drawn_tree()
    for name, cls in defined_exceptions().items():
        assert name in drawn, f"{cls.__module__}.{name} is not drawn in streamer/errors.py"
        parent, rest = drawn[name]
        if cls is StreamerError:
            assert parent is None
            continue
        assert parent == cls.__bases__[0].__name__, (
            f"{name} is drawn under {parent}, but derives from {cls.__bases__[0].__name__}"
        )
        if cls.__module__ != "streamer.errors":
            assert f"({cls.__module__})" in rest, f"{name}'s line must name {cls.__module__}"


def test_the_tree_draws_no_stale_classes() -> None:
    defined = defined_exceptions()
    stale = sorted(set(drawn_tree()) - set(defined))
    assert not stale, f"drawn in streamer/errors.py but defined nowhere: {stale}"
