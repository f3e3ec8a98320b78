"""The package on every supported Python: ``nox`` (all of them) or ``nox -s tests-3.13``.

Each ``tests`` session installs the built wheel (the one given after ``--``, or one built
here) with its ``dev`` extra into the session's virtualenv, imports it from outside the
checkout (so the installed files are what is imported), then runs the unit tests of the
checkout with that Python and those dependencies. A Python that is
not installed is skipped, with nox saying so, when run with
``--no-error-on-missing-interpreters`` (as ``scripts/release-check`` does).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]
ROOT = Path(__file__).resolve().parent

nox.options.sessions = ["tests"]

IMPORT_CHECK = """
import pathlib, sys
import streamer, streamer.examples.fraud
from streamer.cli.main import version_text
where = pathlib.Path(streamer.__file__).resolve()
assert pathlib.Path(sys.prefix).resolve() in where.parents, f"imported {where}, not the wheel"
print(version_text().replace(chr(10), "; "))
"""


def _wheel(session: nox.Session) -> Path:
    """The wheel named after ``--``, else one built now into the session's temporary dir."""
    if session.posargs:
        return Path(session.posargs[0]).resolve()
    out = Path(session.create_tmp()) / "dist"
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", str(out), str(ROOT))
    return next(out.glob("streamer-*.whl"))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Install the wheel, import it from outside the checkout, run tests/unit."""
    wheel = _wheel(session)
    session.install(f"{wheel}[dev]")
    # The same version as a wheel of the last run: install this build's files.
    session.install("--force-reinstall", "--no-deps", str(wheel))
    with tempfile.TemporaryDirectory() as outside, session.chdir(outside):
        session.run("python", "-c", IMPORT_CHECK)
    session.run("pytest", "tests/unit", "-q", "-p", "no:cacheprovider")
