from __future__ import annotations

import json

import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.baseline import BaselineDistributionLoader


def _load(make_file, ctx, doc, name="baseline_distribution.json"):
    return BaselineDistributionLoader().load(make_file(name, json.dumps(doc)), ctx)


def test_shares(make_file, ctx):
    loaded = _load(make_file, ctx, {"positive": 0.55, "negative": 0.35, "neutral": 0.10})
    assert loaded.warnings == []
    df = loaded.frame
    assert list(df.columns) == ["label", "share", "count"]
    assert df["label"].tolist() == ["positive", "negative", "neutral"]
    assert df["share"].tolist() == pytest.approx([0.55, 0.35, 0.10])
    assert df["count"].isna().all()
    assert loaded.meta["mode"] == "shares"


def test_counts(make_file, ctx):
    loaded = _load(make_file, ctx, {"positive": 550, "negative": 350, "neutral": 100})
    assert loaded.warnings == []
    assert loaded.frame.loc[0].to_dict() == {"label": "positive", "share": 0.55, "count": 550}
    assert loaded.meta == {"mode": "counts", "n": 1000, "total": 1000}


def test_wrapped_with_n(make_file, ctx):
    loaded = _load(make_file, ctx, {"distribution": {"positive": 0.6, "negative": 0.4}, "n": 5000})
    assert loaded.warnings == []
    assert loaded.frame["count"].tolist() == [3000, 2000]


def test_unnormalised_shares_warn(make_file, ctx):
    loaded = _load(make_file, ctx, {"a": 0.5, "b": 0.7})
    assert len(loaded.warnings) == 1 and "normalised" in loaded.warnings[0].reason
    assert loaded.frame["share"].sum() == pytest.approx(1.0)
    assert loaded.frame.loc[0, "share"] == pytest.approx(0.5 / 1.2)


def test_bad_values_warn(make_file, ctx):
    loaded = _load(make_file, ctx, {"a": 0.6, "b": -0.1, "c": "lots", "d": 0.4, "e": True})
    assert [w.reason.split(":")[0] for w in loaded.warnings] == ["class 'b'", "class 'c'", "class 'e'"]
    assert loaded.frame["label"].tolist() == ["a", "d"]


@pytest.mark.parametrize("doc", [[0.5, 0.5], {}, {"a": "x"}, {"a": 0, "b": 0}])
def test_unusable(make_file, ctx, doc):
    with pytest.raises(MalformedEvidence):
        _load(make_file, ctx, doc)


def test_detect(make_file):
    loader = BaselineDistributionLoader()
    assert loader.detect(make_file("anywhere/priors.json", '{"a": 550, "b": 450}'))
    assert loader.detect(make_file("anywhere/x.json", '{"a": 0.25, "b": 0.75}'))
    assert loader.detect(make_file("anywhere/y.json", '{"distribution": {"a": 3}, "n": 3}'))
    # counts without a name hint: could be a tokenizer vocabulary or a label map
    assert not loader.detect(make_file("anywhere/label2id.json", '{"negative": 0, "positive": 1}'))
    assert not loader.detect(make_file("predictions/vocab.json", '{"[PAD]": 0, "[UNK]": 1}'))
    assert not loader.detect(make_file("anywhere/eval_results.json", '{"eval_accuracy": 0.5, "eval_f1": 0.5}'))
