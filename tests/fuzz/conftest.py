"""Hypothesis profiles for the property-based tests of the evidence parsers.

``HYPOTHESIS_PROFILE`` picks one (default ``ci``):

* ``ci``: few examples per property, derandomized (the same inputs on every run, so that CI never flakes on a new
  example) and no example database; the property tests of this folder take well under a minute together.
* ``dev``: more examples, random, with the local example database (``.hypothesis/``), for a developer chasing a bug.
* ``nightly``: thousands of examples per property, random; ``benchmarks/fuzz_parsers.py`` runs it time-boxed and
  keeps the database of failing examples beside its report.

The deadline is a hang guard (a parser that stops making progress on a small input), not a speed assertion: it is
generous because this machine's two cores are shared.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": timedelta(seconds=10), "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=25, derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=300, print_blob=True, **_COMMON)
settings.register_profile("nightly", max_examples=5000, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
