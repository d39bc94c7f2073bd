"""The promises tables of docs/security.md and docs/reliability.md: each row is a
promise and the tests that prove it, each test name after a link to its file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)#]+)\)")
TEST_NAME = re.compile(r"`(test_\w+)`")
TITLE = "Promises and the tests that prove them"


def section(doc: Path, title: str) -> str:
    text = doc.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def defined_tests(path: Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)\(", path.read_text(), re.MULTILINE))


def promise_rows(doc: Path) -> list[tuple[str, str]]:
    """(promise, proof) of each row of the table."""
    rows = []
    for line in section(doc, TITLE).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("promise", "---"):
            rows.append((cells[0], cells[1]))
    return rows


def check_promises(doc: Path, at_least: int) -> None:
    """Every row links test files under tests/ and names tests each of them defines."""
    rows = promise_rows(doc)
    assert len(rows) >= at_least, "the promise table was not found or lost rows"
    for promise, proof in rows:
        # Each test name belongs to the file linked before it in the same cell.
        pieces = LINK.split(proof)  # [text, link, text, link, text, ...]
        assert len(pieces) >= 3, f"no test file linked for: {promise}"
        assert not TEST_NAME.findall(pieces[0]), f"test named before any file: {promise}"
        for link, names in zip(pieces[1::2], pieces[2::2], strict=True):
            path = (doc.parent / link).resolve()
            assert path.is_file(), f"{link} (for: {promise}) does not exist"
            assert path.is_relative_to(ROOT / "tests"), link
            named = TEST_NAME.findall(names)
            assert named, f"{link} linked without a test name (for: {promise})"
            missing = set(named) - defined_tests(path)
            assert not missing, f"{link} has no {sorted(missing)} (for: {promise})"


def check_links(doc: Path) -> None:
    """Every relative link of `doc` resolves."""
    links = [link for link in LINK.findall(doc.read_text()) if "://" not in link]
    assert links
    for link in links:
        assert (doc.parent / link).resolve().exists(), link
