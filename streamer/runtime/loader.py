"""Loads a user's topology from a Python file or module.

``spec`` is ``path/to/file.py`` or ``package.module``, optionally followed by ``:name``.
A file in a package folder (one with ``__init__.py``) is imported as part of its package, as
``python -m`` would, so its relative imports work.
Without a name, the module's ``topology`` attribute is used if present, else its
``build_topology()`` or ``build()`` function. A callable is called with no arguments and
must return a :class:`~streamer.topology.graph.Topology`.

Every failure is a :class:`~streamer.errors.ConfigError` of one line. An exception raised
while importing the topology or calling its function reads ``file:line: Kind: message``,
where ``file:line`` is the innermost frame of the topology's own file (for a
``SyntaxError``, the place the parser points at, in whichever file it is); the original
exception stays chained as ``__cause__`` for a verbose traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from streamer.errors import ConfigError
from streamer.topology.graph import Topology

_DEFAULT_NAMES = ("topology", "build_topology", "build")


def _shown(filename: str) -> str:
    """``filename`` relative to the working directory when it lies under it."""
    path = Path(filename)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return filename


def _where(exc: BaseException, source: str | None) -> str | None:
    """``file:line`` of the innermost frame of ``exc``'s traceback in ``source``; for a
    SyntaxError, its own file and line. None when neither is known."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{_shown(exc.filename)}:{exc.lineno}"
    if source is None:
        return None
    wanted = os.path.realpath(source)
    found: str | None = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.lineno is not None and os.path.realpath(frame.filename) == wanted:
            found = f"{_shown(frame.filename)}:{frame.lineno}"
    return found


def describe_failure(exc: BaseException, source: str | None) -> str:
    """One line: ``file:line: Kind: message`` (the place left out when unknown)."""
    kind = type(exc).__name__
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    what = f"{kind}: {first}" if first else kind
    where = _where(exc, source)
    return what if where is None else f"{where}: {what}"


def _package_name(path: Path) -> str | None:
    """The dotted name of ``path`` when its folder is a package (has ``__init__.py``), as
    ``python -m`` would import it from the first folder above that is not one; else None."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    if len(parts) == 1:
        return None
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return ".".join(parts)


def _import_file(target: str) -> ModuleType:
    """Import the file ``target``: as part of its package when its folder is one (so its
    relative imports work), else as a module of its own with its folder on ``sys.path``."""
    path = Path(target).resolve()
    if not path.is_file():
        msg = f"topology file {target!r} does not exist"
        raise ConfigError(msg)
    dotted = _package_name(path)
    if dotted is not None:
        return _import(dotted)
    name = f"streamer_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        msg = f"cannot import {target!r} as a Python module"
        raise ConfigError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConfigError(describe_failure(exc, str(path))) from exc
    return module


def _module_file(target: str) -> str | None:
    """The file of module ``target``, found without running it again; None if unknown."""
    try:
        spec = importlib.util.find_spec(target)
    except Exception:
        return None
    return None if spec is None else spec.origin


def _import(target: str) -> ModuleType:
    if target.endswith(".py") or "/" in target:
        return _import_file(target)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(f"{exc.name}.")):
            msg = f"cannot import topology module {target!r}: {exc}"
            raise ConfigError(msg) from exc
        raise ConfigError(describe_failure(exc, _module_file(target))) from exc
    except Exception as exc:
        raise ConfigError(describe_failure(exc, _module_file(target))) from exc


def load_topology(spec: str) -> Topology:
    """Import ``spec`` and return its topology; see the module docstring."""
    target, _, attr = spec.partition(":")
    module = _import(target)
    names = (attr,) if attr else _DEFAULT_NAMES
    for name in names:
        if hasattr(module, name):
            value = getattr(module, name)
            if callable(value) and not isinstance(value, Topology):
                try:
                    topology = value()
                except Exception as exc:
                    raise ConfigError(describe_failure(exc, module.__file__)) from exc
            else:
                topology = value
            if not isinstance(topology, Topology):
                msg = f"{spec}: {name!r} is a {type(topology).__name__}, not a Topology"
                raise ConfigError(msg)
            return topology
    msg = f"{target} defines none of {', '.join(names)}: expose a Topology or a build() function"
    raise ConfigError(msg)
