"""The one sanitising function: lone surrogates become U+FFFD, split pairs are joined, nothing else changes."""

from __future__ import annotations

import pytest

from workbench.textsafe import REPLACEMENT, clean_data, clean_text, is_clean, replaced_reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\ud800", REPLACEMENT),
        ("a\udcffb", f"a{REPLACEMENT}b"),
        ("\udc00\ud800", REPLACEMENT * 2),  # low then high: not a pair
        ("\ud83d\ude00", "\U0001f600"),  # a pair split into two code points is the character it encodes
        ("x\ud83d\ude00\ud800", f"x\U0001f600{REPLACEMENT}"),
    ],
)
def test_surrogates_replaced_and_pairs_joined(raw, expected):
    cleaned, changed = clean_text(raw)
    assert (cleaned, changed) == (expected, True)
    cleaned.encode("utf-8")  # never raises after cleaning
    with pytest.raises(UnicodeEncodeError):
        raw.encode("utf-8")


@pytest.mark.parametrize("text", ["", "plain ascii", "é ü 漢字 \U0001f600", "\ufffd already", "\x00\x1b[31m"])
def test_valid_text_is_returned_as_is(text):
    cleaned, changed = clean_text(text)
    assert cleaned is text and changed is False and is_clean(text)


def test_clean_data_walks_keys_values_lists_and_tuples():
    doc = {"ok": [1, "fine", ("t\ud800",)], "k\udcff": {"inner": "\ud800"}, "n": None}
    cleaned, changed = clean_data(doc)
    assert changed and cleaned == {"ok": [1, "fine", (f"t{REPLACEMENT}",)], f"k{REPLACEMENT}": {"inner": REPLACEMENT},
                                   "n": None}  # fmt: skip
    assert doc["k\udcff"] == {"inner": "\ud800"}  # the input is not modified
    same = {"a": ["b", 1]}
    assert clean_data(same)[0] is same and clean_data(same)[1] is False


def test_one_wording():
    assert replaced_reason() == "text is not valid Unicode (lone UTF-16 surrogate): replaced with U+FFFD"
    assert replaced_reason("a file name").startswith("a file name is not valid Unicode")
