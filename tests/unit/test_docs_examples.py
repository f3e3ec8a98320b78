"""Every ```python block of every docs/*.md page runs as written.

The blocks of one page run in order in one namespace (a fresh module per page), so a page can
build a topology in one block and test it in the next. Tracebacks point at the page and its
line numbers.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# Concept pages that must keep at least one runnable example.
WITH_EXAMPLES = {
    "streams.md",
    "tables.md",
    "windows.md",
    "joins.md",
    "processor-api.md",
    "testing.md",
}


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(first line number, code)`` of each ```python block of ``page``."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_concept_pages_exist_and_have_examples() -> None:
    names = {page.name for page in PAGES}
    assert names >= WITH_EXAMPLES, f"missing pages: {WITH_EXAMPLES - names}"
    assert "index.md" in names
    for page in PAGES:
        if page.name in WITH_EXAMPLES:
            assert python_blocks(page), f"{page.name} has no ```python example"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_examples_run(page: Path) -> None:
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    module.__file__ = str(page)
    sys.modules[module.__name__] = module  # dataclasses and pickling look modules up here
    try:
        for line, code in python_blocks(page):
            # Pad with blank lines so that tracebacks give the line numbers of the page.
            exec(compile("\n" * (line - 1) + code, str(page), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]


def test_the_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text()
    for page in PAGES:
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"index.md does not link {page.name}"
