"""Package layout that pyproject.toml cannot express: the example topologies of
``topologies/`` ship inside the package as ``streamer.examples`` (with their schemas), so an
installed ``streamer demo`` finds them, while ``topologies/`` stays where readers of the
repository look. Everything else is configured in pyproject.toml."""

from setuptools import find_namespace_packages, setup

EXAMPLES = "streamer.examples"
# Folders without an __init__.py (data such as topologies/schemas/) count as packages too,
# so that their files ship as package data.
NOT_CODE = ["__pycache__", "*.__pycache__"]

setup(
    packages=[
        *find_namespace_packages(include=["streamer", "streamer.*"], exclude=NOT_CODE),
        EXAMPLES,
        *(f"{EXAMPLES}.{name}" for name in find_namespace_packages("topologies", exclude=NOT_CODE)),
    ],
    package_dir={EXAMPLES: "topologies"},
)
