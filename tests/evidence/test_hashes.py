from __future__ import annotations

import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.hashes import HashesLoader

H1 = "3f" * 32
H2 = "9C" * 32
H3 = "0d" * 32


def test_text_binary_and_escaped(make_file, ctx):
    text = (
        f"{H1}  /models/sentiment-v2/model.safetensors\n"
        f"{H2} */models/sentiment-v2/tokenizer.json\n"
        f"\\{H3}  /models/odd\\\\name\\nwith newline.bin\n"
        f"{H1}   leading space.txt\n"
    )
    loaded = HashesLoader().load(make_file("current_hashes.txt", text), ctx)
    df = loaded.frame
    assert loaded.warnings == []
    assert list(df.columns) == ["line", "sha256", "path", "binary"]
    assert df.loc[0].to_dict() == {
        "line": 1,
        "sha256": H1,
        "path": "/models/sentiment-v2/model.safetensors",
        "binary": False,
    }
    assert df.loc[1, "sha256"] == H2.lower() and bool(df.loc[1, "binary"]) is True
    assert df.loc[2, "path"] == "/models/odd\\name\nwith newline.bin"
    assert df.loc[3, "path"] == " leading space.txt"


def test_bsd_tag_lines(make_file, ctx):
    loaded = HashesLoader().load(make_file("SHA256SUMS", f"SHA256 (model.safetensors) = {H1}\n"), ctx)
    assert loaded.frame.loc[0, "path"] == "model.safetensors"


def test_bad_line_one_warning(make_file, ctx):
    text = f"{H1}  a.bin\n{'ab' * 16}  md5.bin\nnot a checksum\n{H2}  b.bin\n"
    loaded = HashesLoader().load(make_file("current_hashes.txt", text), ctx)
    assert [(w.path, w.line) for w in loaded.warnings] == [("evidence.txt", 2), ("evidence.txt", 3)]
    assert "SHA-256" in loaded.warnings[0].reason
    assert list(loaded.frame["line"]) == [1, 4]


def test_all_bad_is_malformed(make_file, ctx):
    with pytest.raises(MalformedEvidence):
        HashesLoader().load(make_file("current_hashes.txt", "hello\n"), ctx)


def test_detect(make_file):
    loader = HashesLoader()
    assert loader.detect(make_file("x/whatever.txt", f"{H1}  a\n"))
    assert loader.detect(make_file("current_hashes.txt", ""))
    assert not loader.detect(make_file("y/whatever.txt", "numpy==1.26.4\n"))
