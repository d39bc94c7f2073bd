"""docs/security.md cannot lag: every test it names exists where it says, every link
resolves, and the examples it quotes are the shipped files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/security.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)#]+)\)")
TEST_NAME = re.compile(r"`(test_\w+)`")


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def defined_tests(path: Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)\(", path.read_text(), re.MULTILINE))


def promise_rows() -> list[tuple[str, str]]:
    rows = []
    for line in section("Promises and the tests that prove them").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("promise", "---"):
            rows.append((cells[0], cells[1]))
    return rows


def test_every_promise_names_tests_that_exist_in_the_linked_files() -> None:
    rows = promise_rows()
    assert len(rows) >= 15, "the promise table was not found or lost rows"
    for promise, proof in rows:
        # Each test name belongs to the file linked before it in the same cell.
        pieces = LINK.split(proof)  # [text, link, text, link, text, ...]
        assert len(pieces) >= 3, f"no test file linked for: {promise}"
        assert not TEST_NAME.findall(pieces[0]), f"test named before any file: {promise}"
        for link, names in zip(pieces[1::2], pieces[2::2], strict=True):
            path = (DOC.parent / link).resolve()
            assert path.is_file(), f"{link} (for: {promise}) does not exist"
            assert path.is_relative_to(ROOT / "tests"), link
            named = TEST_NAME.findall(names)
            assert named, f"{link} linked without a test name (for: {promise})"
            missing = set(named) - defined_tests(path)
            assert not missing, f"{link} has no {sorted(missing)} (for: {promise})"


def test_every_relative_link_resolves() -> None:
    links = [link for link in LINK.findall(DOC.read_text()) if "://" not in link]
    assert links
    for link in links:
        assert (DOC.parent / link).resolve().exists(), link


def code_blocks(language: str) -> list[str]:
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)
    return [body for lang, body in blocks if lang == language]


def without_comments(path: Path, prefix: str) -> str:
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith(prefix)]
    return "\n".join(lines).strip()


def test_quoted_examples_are_the_shipped_files() -> None:
    (rule,) = code_blocks("js")
    assert rule.strip() == without_comments(ROOT / "contrib/polkit/50-sysmenu.rules", "//")
    sudoers = without_comments(ROOT / "contrib/sudoers.d/sysmenu", "#")
    assert any(block.strip() == sudoers for block in code_blocks("")), "sudoers example differs"
    yaml_commands = re.findall(r"^\s+\w+Command: (.+)$", "".join(code_blocks("yaml")), re.MULTILINE)
    plain = [c for c in yaml_commands if not c.startswith("sudo")]
    with_sudo = [c.removeprefix("sudo -n ") for c in yaml_commands if c.startswith("sudo")]
    assert plain == with_sudo and len(plain) == 3, yaml_commands
    assert all(command in sudoers for command in plain)
