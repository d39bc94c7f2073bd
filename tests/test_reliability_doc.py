"""docs/reliability.md cannot lag: every test it names exists in the file linked before
it, every relative link resolves, and every test of the fault-injection suite is named."""

from __future__ import annotations

from tests.promises import ROOT, TEST_NAME, check_links, check_promises, defined_tests, promise_rows

DOC = ROOT / "docs/reliability.md"
SUITE = ("tests/e2e/test_faults_processes.py", "tests/e2e/test_faults_storage.py")


def test_every_promise_names_tests_that_exist_in_the_linked_files() -> None:
    check_promises(DOC, at_least=12)


def test_every_test_of_the_fault_suite_backs_a_promise() -> None:
    named = {name for _, proof in promise_rows(DOC) for name in TEST_NAME.findall(proof)}
    for suite in SUITE:
        assert defined_tests(ROOT / suite) <= named, suite


def test_every_relative_link_resolves() -> None:
    check_links(DOC)
