"""docs/reliability.md cannot lag: every test it names exists in the file linked before
it, every relative link resolves, and every test of the fault-injection suite is named."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/reliability.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)#]+)\)")
TEST_NAME = re.compile(r"`(test_\w+)`")
SUITE = ("tests/e2e/test_faults_processes.py", "tests/e2e/test_faults_storage.py")


def defined_tests(path: Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)\(", path.read_text(), re.MULTILINE))


def promise_rows() -> list[tuple[str, str]]:
    text = DOC.read_text()
    start = text.index("## Promises and the tests that prove them")
    end = text.find("\n## ", start + 1)
    rows = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("promise", "---"):
            rows.append((cells[0], cells[1]))
    return rows


def test_every_promise_names_tests_that_exist_in_the_linked_files() -> None:
    rows = promise_rows()
    assert len(rows) >= 12, "the promise table was not found or lost rows"
    for promise, proof in rows:
        pieces = LINK.split(proof)  # [text, link, text, link, text, ...]
        assert len(pieces) >= 3, f"no test file linked for: {promise}"
        for link, names in zip(pieces[1::2], pieces[2::2], strict=True):
            path = (DOC.parent / link).resolve()
            assert path.is_file() and path.is_relative_to(ROOT / "tests"), link
            named = TEST_NAME.findall(names)
            assert named, f"{link} linked without a test name (for: {promise})"
            missing = set(named) - defined_tests(path)
            assert not missing, f"{link} has no {sorted(missing)} (for: {promise})"


def test_every_test_of_the_fault_suite_backs_a_promise() -> None:
    named = {name for _, proof in promise_rows() for name in TEST_NAME.findall(proof)}
    for suite in SUITE:
        assert defined_tests(ROOT / suite) <= named, suite


def test_every_relative_link_resolves() -> None:
    links = [link for link in LINK.findall(DOC.read_text()) if "://" not in link]
    assert links
    for link in links:
        assert (DOC.parent / link).resolve().exists(), link
