"""The strict safetensors header parser: real files from the library, and crafted malformed ones, byte by byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from workbench.model.safetensors_format import (
    MAX_HEADER_BYTES,
    TensorInfo,
    header_findings,
    looks_like_safetensors,
    read_header,
)
from workbench.records import Severity

F32_2x2 = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}


def codes(path: Path) -> list[str]:
    return [v.code for v in read_header(path).violations]


def test_library_file_parses_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ok.safetensors"
    save_file({"b": np.zeros((2, 3), np.float32), "a": np.arange(4, dtype=np.int64)}, str(path), metadata={"k": "v"})
    h = read_header(path)
    assert h.violations == () and h.parsed and h.metadata == {"k": "v"}
    start = h.data_start
    assert h.tensors == (TensorInfo("a", "I64", (4,), start, start + 32), TensorInfo("b", "F32", (2, 3), start + 32,
                                                                                      start + 56))  # fmt: skip
    assert h.file_size == path.stat().st_size == start + 56
    assert looks_like_safetensors(path)


def test_minilm_header_is_clean(minilm_dir: Path) -> None:
    h = read_header(minilm_dir / "model.safetensors")
    assert h.violations == () and len(h.tensors) == 104
    emb = h.tensor_map()["embeddings.word_embeddings.weight"]
    assert (emb.dtype, emb.shape, emb.nbytes) == ("F32", (30522, 384), 30522 * 384 * 4)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", ["empty_file"]),
        (b"\x05\x00\x00", ["truncated_prefix"]),
        ((MAX_HEADER_BYTES + 1).to_bytes(8, "little") + b"{}", ["header_too_large"]),
        ((100).to_bytes(8, "little") + b'{"a":1}', ["truncated_header"]),
        ((4).to_bytes(8, "little") + b"\xff\xfe{}", ["not_utf8"]),
        ((7).to_bytes(8, "little") + b"{'a':1}", ["not_json"]),
        ((9).to_bytes(8, "little") + b'{"a":NaN}', ["not_json"]),
        ((2).to_bytes(8, "little") + b"[]", ["not_object"]),
    ],
    ids=["empty", "short-prefix", "oversize-header", "truncated", "not-utf8", "not-json", "nan", "array"],
)
def test_fatal_violations(tmp_path: Path, content: bytes, expected: list[str]) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    h = read_header(path)
    assert [v.code for v in h.violations] == expected
    assert not h.parsed and h.tensors == ()


def test_leading_whitespace_flagged_but_parsed(tmp_path: Path, raw_safetensors) -> None:
    path = tmp_path / "ws.safetensors"
    path.write_bytes(raw_safetensors("  \n" + json.dumps({"w": F32_2x2}), bytes(16)))
    h = read_header(path)
    assert [(v.code, v.severity) for v in h.violations] == [("leading_whitespace", Severity.MEDIUM)]
    assert [t.name for t in h.tensors] == ["w"]
    load_file(str(path))  # the library itself accepts it, which is why we flag it


def test_trailing_space_padding_is_legal(tmp_path: Path, raw_safetensors) -> None:
    path = tmp_path / "pad.safetensors"
    path.write_bytes(raw_safetensors(json.dumps({"w": F32_2x2}) + "      ", bytes(16)))
    assert codes(path) == []


def test_duplicate_keys(tmp_path: Path, raw_safetensors) -> None:
    entry = '"w":{{"dtype":"{}","shape":[2],"data_offsets":[0,8]}}'
    header = "{" + entry.format("F32") + "," + entry.format("I32") + "}"
    path = tmp_path / "dup.safetensors"
    path.write_bytes(raw_safetensors(header, bytes(8)))
    h = read_header(path)
    assert [(v.code, v.tensor) for v in h.violations] == [("duplicate_key", "w")]
    assert h.tensors[0].dtype == "I32"  # the last one wins, as in the library, which accepts the file silently
    assert load_file(str(path))["w"].dtype == np.int32


def test_duplicate_field_inside_entry(tmp_path: Path, raw_safetensors) -> None:
    header = '{"w":{"dtype":"F32","dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}'
    path = tmp_path / "dupfield.safetensors"
    path.write_bytes(raw_safetensors(header, bytes(8)))
    assert codes(path) == ["duplicate_key"]
    assert read_header(path).tensors[0].dtype == "F16"


def test_overlapping_offsets_stay_readable(tmp_path: Path, raw_safetensors) -> None:
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}  # fmt: skip
    path = tmp_path / "overlap.safetensors"
    path.write_bytes(raw_safetensors(header, bytes(16)))
    h = read_header(path)
    assert [(v.code, v.tensor) for v in h.violations] == [("overlapping_offsets", "b")]
    assert "share bytes 8..16" in h.violations[0].reason
    assert sorted(h.tensor_map()) == ["a", "b"]


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 32]}, "offsets_out_of_range"),
        ({"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}, "size_mismatch"),
        ({"dtype": "Q4", "shape": [2, 2], "data_offsets": [0, 16]}, "bad_dtype"),
        ({"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]}, "bad_shape"),
        ({"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}, "bad_offsets"),
        ({"dtype": "F32", "shape": [2, 2], "data_offsets": [0, True]}, "bad_offsets"),
        ({"dtype": "F32", "shape": [2, 2]}, "bad_entry"),
        ([1, 2], "bad_entry"),
    ],
)
def test_entry_violations_drop_the_tensor(tmp_path: Path, raw_safetensors, entry: object, code: str) -> None:
    path = tmp_path / "e.safetensors"
    path.write_bytes(raw_safetensors({"x": entry}, bytes(16)))
    h = read_header(path)
    assert h.violations[0].code == code and h.violations[0].tensor == "x"
    assert h.tensors == ()


def test_gaps_trailing_bytes_extra_fields_and_metadata(tmp_path: Path, raw_safetensors) -> None:
    header = {"__metadata__": {"format": 1},
              "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8], "note": "x"}}  # fmt: skip
    path = tmp_path / "gap.safetensors"
    path.write_bytes(raw_safetensors(header, bytes(20)))
    assert codes(path) == ["bad_metadata", "extra_field", "unclaimed_bytes", "trailing_bytes"]
    reasons = [v.reason for v in read_header(path).violations]
    assert "4 byte(s) before tensor 'a'" in reasons[2] and "12 byte(s) after the last tensor" in reasons[3]


def test_symlink_refused(tmp_path: Path) -> None:
    target = tmp_path / "real.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(target))
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    assert codes(link) == ["not_a_file"]


def test_pickle_in_disguise_is_not_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94.")
    assert not looks_like_safetensors(path)
    assert codes(path) == ["header_too_large"]


def test_header_findings(tmp_path: Path, raw_safetensors) -> None:
    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]} for i in range(25)}
    path = tmp_path / "many.safetensors"
    path.write_bytes(raw_safetensors(header, bytes(8)))
    found = header_findings(read_header(path), "models/x/many.safetensors")
    assert len(found) == 21
    assert {f.category for f in found} == {"safetensors_malformed"}
    assert all(f.atlas == ("AML.T0010.003", "AML.T0018.000") for f in found)
    assert found[0].evidence == {"path": "models/x/many.safetensors", "violation": "size_mismatch", "tensor": "t0"}
    assert found[-1].title == "models/x/many.safetensors: 6 more safetensors violations"
    assert found[-1].severity == Severity.HIGH
