"""Package layout that pyproject.toml cannot express: the example topologies of
``topologies/`` ship inside the package as ``streamer.examples`` (with their schemas), so an
installed ``streamer demo`` finds them, while ``topologies/`` stays where readers of the
repository look. Everything else is configured in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

EXAMPLES = "streamer.examples"
# Data folders of topologies/ (schemas/) are namespace packages, so that their files ship.
EXAMPLE_PACKAGES = find_namespace_packages("topologies", exclude=["*__pycache__*"])

setup(
    packages=[
        *find_packages(include=["streamer", "streamer.*"]),
        EXAMPLES,
        *(f"{EXAMPLES}.{name}" for name in EXAMPLE_PACKAGES),
    ],
    package_dir={EXAMPLES: "topologies"},
)
