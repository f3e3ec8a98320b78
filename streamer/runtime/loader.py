"""Loads a user's topology from a Python file or module.

``spec`` is ``path/to/file.py`` or ``package.module``, optionally followed by ``:name``.
Without a name, the module's ``topology`` attribute is used if present, else its
``build_topology()`` or ``build()`` function. A callable is called with no arguments and
must return a :class:`~streamer.topology.graph.Topology`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from streamer.errors import ConfigError
from streamer.topology.graph import Topology

_DEFAULT_NAMES = ("topology", "build_topology", "build")


def _import(target: str) -> ModuleType:
    if target.endswith(".py") or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            msg = f"topology file {target!r} does not exist"
            raise ConfigError(msg)
        name = f"streamer_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            msg = f"cannot import {target!r} as a Python module"
            raise ConfigError(msg)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        msg = f"cannot import topology module {target!r}: {exc}"
        raise ConfigError(msg) from exc


def load_topology(spec: str) -> Topology:
    """Import ``spec`` and return its topology; see the module docstring."""
    target, _, attr = spec.partition(":")
    module = _import(target)
    names = (attr,) if attr else _DEFAULT_NAMES
    for name in names:
        if hasattr(module, name):
            value = getattr(module, name)
            topology = value() if callable(value) and not isinstance(value, Topology) else value
            if not isinstance(topology, Topology):
                msg = f"{spec}: {name!r} is a {type(topology).__name__}, not a Topology"
                raise ConfigError(msg)
            return topology
    msg = f"{target} defines none of {', '.join(names)}: expose a Topology or a build() function"
    raise ConfigError(msg)
