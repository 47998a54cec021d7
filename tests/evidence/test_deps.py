from __future__ import annotations

import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.deps import FrozenDepsLoader, normalize_name

FREEZE = """\
# pip freeze captured 2026-11-19T09:20:00Z
-i https://pypi.org/simple
--extra-index-url https://deploy:s3cr3t@pkgs.internal.example/simple

certifi==2024.8.30
numpy==1.26.4
Pillow==10.4.0
torch==2.3.1+cpu
zope.interface===6.4.post2
Jinja2==3.1.4  # pinned by security
transformers @ git+https://github.com/huggingface/transformers.git@4b8f2c1d9e
tokenizers @ file:///tmp/wheels/tokenizers-0.19.1-cp311-cp311-manylinux_2_17_x86_64.whl
# Editable install with no version control (sentiment-serving==0.3.0)
-e /srv/app/sentiment_serving
-e git+https://github.com/example/ml-utils.git@9f1c2ab#egg=ml_utils
private-pkg @ git+https://ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@github.com/acme/private-pkg.git@v1.2
"""


@pytest.fixture
def loaded(make_file, ctx):
    return FrozenDepsLoader().load(make_file("frozen_deps.txt", FREEZE), ctx)


def test_clean_freeze(loaded):
    assert loaded.warnings == []
    df = loaded.frame.set_index("raw_name")
    assert len(df) == 11
    assert df.loc["numpy", ["line", "name", "version", "operator"]].tolist() == [6, "numpy", "1.26.4", "=="]
    assert df.loc["zope.interface", "name"] == "zope-interface"
    assert df.loc["zope.interface", ["version", "operator"]].tolist() == ["6.4.post2", "==="]
    assert df.loc["Pillow", "name"] == "pillow"
    assert df.loc["Jinja2", "version"] == "3.1.4"
    assert df.loc["torch", "version"] == "2.3.1+cpu"


def test_direct_urls(loaded):
    df = loaded.frame.set_index("name")
    tr = df.loc["transformers"]
    assert (tr["operator"], tr["revision"]) == ("@", "4b8f2c1d9e")
    assert tr["url"] == "git+https://github.com/huggingface/transformers.git@4b8f2c1d9e"
    assert pd_na(tr["version"])
    tok = df.loc["tokenizers"]
    assert pd_na(tok["version"]) and tok["url"].startswith("file:///tmp/wheels/")


def test_editables(loaded):
    df = loaded.frame.set_index("name")
    serving = df.loc["sentiment-serving"]
    assert bool(serving["editable"]) and serving["operator"] == "-e"
    assert (serving["raw_name"], serving["url"]) == ("sentiment-serving", "/srv/app/sentiment_serving")
    assert pd_na(serving["version"])  # editable and URL installs have no trustworthy version
    utils = df.loc["ml-utils"]
    assert (utils["raw_name"], utils["revision"]) == ("ml_utils", "9f1c2ab")
    assert not bool(df.loc["numpy", "editable"])


def test_options_and_secrets(loaded):
    assert loaded.meta["index_urls"] == ["https://pypi.org/simple", "https://deploy:***@pkgs.internal.example/simple"]
    assert loaded.meta["redacted_lines"] == [3, 16]
    url = loaded.frame.set_index("name").loc["private-pkg", "url"]
    assert "ghp_" not in url and url == "git+https://***@github.com/acme/private-pkg.git@v1.2"
    assert "s3cr3t" not in repr(loaded)


def test_bad_line_one_warning(make_file, ctx):
    text = "numpy==1.26.4\nthis is not a requirement\nrequests==\nscipy==1.13.1\n"
    loaded = FrozenDepsLoader().load(make_file("frozen_deps.txt", text), ctx)
    assert [w.line for w in loaded.warnings] == [2, 3]
    assert list(loaded.frame["name"]) == ["numpy", "scipy"]


def test_comments_only_is_empty_not_malformed(make_file, ctx):
    loaded = FrozenDepsLoader().load(make_file("frozen_deps.txt", "# nothing installed\n\n"), ctx)
    assert loaded.frame.empty and list(loaded.frame.columns) == list(FrozenDepsLoader.columns)


def test_all_bad_is_malformed(make_file, ctx):
    with pytest.raises(MalformedEvidence):
        FrozenDepsLoader().load(make_file("frozen_deps.txt", "hello world\nfoo bar\n"), ctx)


@pytest.mark.parametrize(
    ("raw", "norm"), [("Django", "django"), ("zope.interface", "zope-interface"), ("a__b--c..d", "a-b-c-d")]
)
def test_normalize_name(raw, norm):
    assert normalize_name(raw) == norm


def test_detect(make_file):
    loader = FrozenDepsLoader()
    assert loader.detect(make_file("anything.txt", FREEZE))
    assert loader.detect(make_file("requirements.txt", ""))
    assert not loader.detect(make_file("notes.txt", "numpy==1.26.4 is what we run\nwe also run torch\n"))


def pd_na(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_requirements_syntax(make_file, ctx):
    text = (
        "# pip-compile output\n"
        "-r base.txt\n"
        "numpy>=1.26, <2 ; python_version >= '3.11'\n"
        "requests\n"
        "torch[cpu]==2.3.1 \\\n"
        "    --hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \\\n"
        "    --hash=sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\n"
    )
    loaded = FrozenDepsLoader().load(make_file("requirements.txt", text), ctx)
    assert loaded.warnings == []
    rows = loaded.frame[["line", "name", "operator", "specifier", "version"]].astype(object)
    rows = rows.where(rows.notna(), None).values.tolist()
    assert rows == [
        [3, "numpy", ">=", ">=1.26,<2", None],
        [4, "requests", None, None, None],
        [5, "torch", "==", "==2.3.1", "2.3.1"],
    ]
    assert loaded.meta["options"] == ["-r base.txt"]
