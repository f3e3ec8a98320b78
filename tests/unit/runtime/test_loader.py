"""A topology that cannot be loaded gives one line, ``file:line: Kind: message``, as a
ConfigError chained to the original exception."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.errors import ConfigError
from streamer.runtime.loader import load_topology

GOOD = """
from streamer import StreamsBuilder

def build():
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    return builder.build()
"""


@pytest.fixture
def topologies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``topologies/`` folder under a working directory of its own."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "topologies"
    folder.mkdir()
    before = set(sys.modules)
    saved_path = list(sys.path)
    yield folder
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path[:] = saved_path


def _write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return f"topologies/{name}"


def _failure(spec: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_topology(spec)
    message = str(caught.value)
    assert "\n" not in message
    return caught.value


def test_a_syntax_error_names_its_file_and_line(topologies: Path) -> None:
    spec = _write(topologies, "bad.py", "import os\n\nx = = 1\n")
    error = _failure(spec)
    assert str(error) == "topologies/bad.py:3: SyntaxError: invalid syntax"
    assert isinstance(error.__cause__, SyntaxError)


def test_a_name_error_at_import_names_the_line_in_the_topology(topologies: Path) -> None:
    spec = _write(topologies, "bad.py", "import os\n\n\n\n\n\ny = x + 1\n")
    error = _failure(spec)
    assert str(error) == "topologies/bad.py:7: NameError: name 'x' is not defined"
    assert isinstance(error.__cause__, NameError)
    assert "name 'x'" in str(error.__cause__)


def test_an_error_in_a_helper_points_at_the_line_of_the_topology_that_called_it(
    topologies: Path,
) -> None:
    _write(topologies, "helpers.py", 'def boom():\n    raise ValueError("no rules file")\n')
    spec = _write(topologies, "uses_helper.py", "import helpers\n\nhelpers.boom()\n")
    error = _failure(spec)
    assert str(error) == "topologies/uses_helper.py:3: ValueError: no rules file"


def test_a_missing_import_names_the_import_line(topologies: Path) -> None:
    spec = _write(topologies, "missing.py", "import os\nimport no_such_module_here\n")
    error = _failure(spec)
    assert str(error) == (
        "topologies/missing.py:2: ModuleNotFoundError: No module named 'no_such_module_here'"
    )


def test_a_build_function_that_raises_names_its_line(topologies: Path) -> None:
    spec = _write(
        topologies,
        "build_fails.py",
        """
        def build():
            limits = {}
            return limits["card"]
        """,
    )
    error = _failure(spec)
    assert str(error) == "topologies/build_fails.py:3: KeyError: 'card'"
    assert isinstance(error.__cause__, KeyError)


def test_a_module_spec_gets_the_same_line(topologies: Path) -> None:
    package = topologies.parent / "mytopo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "bad.py").write_text("A = 1\nB = undefined_name\n")
    sys.path.insert(0, str(topologies.parent))
    error = _failure("mytopo.bad")
    assert str(error) == "mytopo/bad.py:2: NameError: name 'undefined_name' is not defined"


def test_a_missing_module_or_file_keeps_its_message(topologies: Path) -> None:
    assert "cannot import topology module 'no_such_pkg.topo'" in str(_failure("no_such_pkg.topo"))
    assert "does not exist" in str(_failure("topologies/absent.py"))


def test_a_good_topology_still_loads(topologies: Path) -> None:
    spec = _write(topologies, "good.py", GOOD)
    assert load_topology(spec).describe(app_id="a")
    assert load_topology(f"{spec}:build").describe(app_id="a")


def test_a_file_in_a_package_folder_loads_by_path_with_its_relative_imports(
    topologies: Path,
) -> None:
    """Imported as part of its package, as ``python -m`` would: a relative import of a
    sibling module works (loaded as a module of its own, it would fail)."""
    package = topologies / "loader_pkg_example"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "steps.py").write_text('SOURCE = "in"\n')
    app = "from .steps import SOURCE\n" + textwrap.dedent(GOOD).replace('"in"', "SOURCE")
    (package / "app.py").write_text(app)
    load_topology("topologies/loader_pkg_example/app.py")
    assert "loader_pkg_example.app" in sys.modules
