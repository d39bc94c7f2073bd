"""docs/security.md cannot lag: every test it names exists where it says, every link
resolves, and the examples it quotes are the shipped files."""

from __future__ import annotations

import re
from pathlib import Path

from tests.promises import ROOT, check_links, check_promises

DOC = ROOT / "docs/security.md"


def test_every_promise_names_tests_that_exist_in_the_linked_files() -> None:
    check_promises(DOC, at_least=15)


def test_every_relative_link_resolves() -> None:
    check_links(DOC)


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
