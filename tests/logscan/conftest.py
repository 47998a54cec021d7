"""Shared fixtures of the log-scanner tests: fixture paths, the backends to run, a fixed capture time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from workbench.rulepack.matchers import hyperscan_available

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"
MULTIFORMAT = DATA / "ci-multiformat.log"
BENIGN = DATA / "benign-build.log"
#: capture time of the fixtures (gives syslog lines their year)
CAPTURED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BACKENDS = ["re", pytest.param("hyperscan", marks=pytest.mark.skipif(not hyperscan_available(),
                                                                    reason="hyperscan not installed"))]  # fmt: skip


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each candidate finder in turn (results must not depend on it)."""
    return request.param
