"""The log rules are compiled in the background before the analyses run, once, and errors stay the analysis's."""

from __future__ import annotations

import threading

import pytest

from workbench.errors import RuleError
from workbench.logscan import analysis
from workbench.logscan.engine import Scanner
from workbench.rulepack.matchers import make_finder
from workbench.rulepack.rules import builtin_rules
from workbench.sections import SECTIONS, resolve


@pytest.fixture(autouse=True)
def _no_preparation_left():
    analysis._PREPARING.clear()
    yield
    while analysis._PREPARING:
        analysis._PREPARING.pop().join()


def test_prepare_builds_the_matcher_the_analysis_then_finds_cached():
    make_finder.cache_clear()
    resolve(SECTIONS["logs"].prepare)({})
    assert [t.name for t in analysis._PREPARING] == ["logscan-prepare"]
    analysis._PREPARING[0].join()
    built = make_finder.cache_info()
    assert built.misses >= 1
    Scanner(analysis._rules_from({}))  # the analysis' rules: the log rules and the incident intel's log indicators
    after = make_finder.cache_info()
    assert after.misses == built.misses and after.hits > built.hits  # nothing compiled a second time


def test_the_analysis_waits_for_the_preparation(tmp_path, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow(parameters):
        started.set()
        release.wait(5)
        return builtin_rules()

    monkeypatch.setattr(analysis, "_rules_from", slow)
    analysis.prepare({})
    assert started.wait(5)
    waiter = analysis._PREPARING[0]
    assert waiter.is_alive()
    release.set()
    while analysis._PREPARING:  # what analyse() does first
        analysis._PREPARING.pop().join()
    assert not waiter.is_alive() and threading.active_count() == 1


def test_a_bad_rule_folder_is_left_for_the_analysis_to_report(tmp_path):
    bad = tmp_path / "rules"
    bad.mkdir()
    (bad / "x.yaml").write_text("rules: [{id: broken, pattern: '(', severity: high}]\n")
    analysis.prepare({"log_rules": str(bad)})
    analysis._PREPARING[-1].join()  # the thread ended quietly
    with pytest.raises(RuleError):
        analysis._rules_from({"log_rules": str(bad)})
