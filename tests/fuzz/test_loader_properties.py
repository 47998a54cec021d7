"""Property: every evidence loader of the registry, on any bytes under its own file name, either loads or raises a
documented error (MalformedEvidence / UnsupportedEvidence), never anything else; what it loads has exactly its
declared columns, and no text in it (frame, warnings, meta) is invalid Unicode. ``detect`` never raises.

Inputs: arbitrary bytes, hostile evidence-shaped lines (``strategies.hostile_lines``) and each loader's own sample
(``tests/evidence/conftest.SAMPLES``) mutated: bytes flipped, cut, spliced with hostile lines.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.evidence.conftest import SAMPLES
from tests.fuzz.strategies import EVIDENCE_BYTES, assert_valid_unicode, hostile_lines
from workbench.errors import EvidenceError
from workbench.evidence import REGISTRY, LoadContext, Loaded

NAMES = REGISTRY.names()


@st.composite
def mutated(draw, sample: bytes) -> bytes:
    """A loader's real sample, damaged: bytes replaced, the file cut, hostile lines spliced in."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        if not data:
            break
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[at] = draw(st.integers(min_value=0, max_value=255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + bytearray(draw(hostile_lines())) + data[at:]
    return bytes(data)


def content_for(name: str):
    return st.one_of(EVIDENCE_BYTES, mutated(SAMPLES[name][1]))


def check_load(name: str, data: bytes) -> None:
    loader = REGISTRY.by_name(name)
    rel = SAMPLES[name][0]
    with tempfile.TemporaryDirectory(prefix="wb-fuzz-") as tmp:
        path = Path(tmp) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        assert loader.detect(path) in (True, False)
        REGISTRY.detect(path)  # never raises, whichever loader claims it
        try:
            loaded = loader.load(path, LoadContext(relpath=rel))
        except EvidenceError as exc:  # documented: MalformedEvidence (or UnsupportedEvidence)
            assert_valid_unicode(str(exc), "error message")
            return
    assert isinstance(loaded, Loaded) and loaded.kind == name
    assert list(loaded.frame.columns) == list(loader.columns)
    assert_valid_unicode(loaded.frame, "frame")
    assert_valid_unicode([str(w) for w in loaded.warnings], "warnings")
    assert_valid_unicode(loaded.meta, "meta")


def test_every_registered_loader_is_fuzzed():
    assert set(NAMES) == set(SAMPLES), "a loader without a sample (tests/evidence/conftest.py) is not fuzzed"


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_a_loader_never_fails_outside_its_documented_errors(name, data):
    check_load(name, data.draw(content_for(name), label="content"))
