"""The README is a front page and the rest lives in docs/ (issue 33): every page keeps a table of
contents of its sections, every link between the pages leads somewhere, and the recipes take the
server's address from one variable (`MS`), so a reader changes it in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
# Pages whose recipes talk to a running server of the reader's (production.md and performance.md
# address a deployed site or a benchmark's own servers).
RECIPE_PAGES = [REPO / "README.md", *(p for p in DOCS if p.name not in {"production.md", "performance.md"})]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (a ``#`` there is a shell comment, not a heading)."""
    return re.sub(r"^ *```.*?^ *```", "", text, flags=re.S | re.M)


def headings(text: str, level: str = "#+") -> list[str]:
    return re.findall(rf"^{level} (.+)$", prose(text), re.M)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in headings(path.read_text()):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file_and_heading(page):
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # another site
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target} names no file"
        if anchor:
            assert anchor in anchors(file), f"{page.name}: {target}: no such heading in {file.name}"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_each_docs_page_starts_with_a_table_of_its_sections(page):
    text = prose(page.read_text())
    sections = headings(text, "##")
    assert sections, f"{page.name} has no sections"
    before_first = text.split("\n## ", 1)[0]
    listed = re.findall(r"^- \[[^\]]+\]\(#([^)]+)\)$", before_first, re.M)
    assert listed == [slug(s) for s in sections], f"{page.name}: the table of contents is not its sections"


def test_the_readme_links_every_docs_page_and_keeps_the_set_up_commands():
    readme = (REPO / "README.md").read_text()
    for page in DOCS:
        assert f"](docs/{page.name})" in readme, f"the README does not link docs/{page.name}"
    quick_start = readme.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick_start.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = {line.split()[0] for line in block.splitlines() if line.strip()}
    assert {"bin/dev", "bin/test"} <= commands, block  # the server's set-up and the test command CI runs


@pytest.mark.parametrize("page", RECIPE_PAGES, ids=lambda p: p.name)
def test_recipes_take_the_address_from_one_variable(page):
    text = page.read_text()
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", text, re.S | re.M):
        for line in block.splitlines():
            command = re.sub(r"\s#\s.*$", "", line)  # a comment may say where bin/dev listens
            if re.search(r"(localhost|127\.0\.0\.1):8000", command):
                assert line.startswith("MS="), f"{page.name}: a recipe names the address itself: {line}"
        if "$MS" in block:
            up_to_here = "\n" + text.split(block, 1)[0] + block
            assert "\nMS=" in up_to_here, f"{page.name}: $MS used before the page sets it"
