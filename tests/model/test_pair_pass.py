"""The one-pass hash-and-compare of a file pair (:mod:`workbench.model.pair_pass`) and the tensor diff built on it.

Real files, real safetensors checkpoints written with the safetensors library; expected digests from hashlib and
expected statistics from the block-by-block comparison without the pass (``changes=None``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.model.dirdiff import diff_model
from workbench.model.pair_pass import PIECE, WINDOW, Changes, hash_and_compare, pair_key, pass_folders
from workbench.model.safetensors_format import read_header
from workbench.model.tensors import diff_tensor
from workbench.safeio import SymlinkRefused


def _pair(tmp_path: Path, data: bytes, edit) -> tuple[Path, Path, bytes]:
    ref, sus = tmp_path / "ref.bin", tmp_path / "sus.bin"
    ref.write_bytes(data)
    changed = edit(bytearray(data))
    sus.write_bytes(changed)
    return sus, ref, bytes(changed)


def _covered(changes: Changes, positions: list[int]) -> bool:
    return all(changes.touches(p, p + 1) for p in positions)


SIZE = 2 * WINDOW + 3 * PIECE + 5


@pytest.mark.parametrize("where", [0, SIZE - 1, WINDOW - 1, WINDOW, WINDOW + PIECE + 7])
def test_one_changed_byte_anywhere_is_found_and_both_digests_are_right(tmp_path: Path, where: int) -> None:
    data = os.urandom(SIZE)

    def edit(b: bytearray) -> bytearray:
        b[where] ^= 0xFF
        return b

    sus, ref, changed = _pair(tmp_path, data, edit)
    found = hash_and_compare(sus, ref)
    assert found.suspect_sha256 == hashlib.sha256(changed).hexdigest()
    assert found.reference_sha256 == hashlib.sha256(data).hexdigest()
    assert (found.suspect_size, found.reference_size) == (SIZE, SIZE)
    assert _covered(found.changes, [where]) and not found.identical
    ((start, end),) = found.changes.ranges
    assert start <= where < end and end - start <= PIECE  # localised to its piece
    assert not found.changes.touches(0, start) and not found.changes.touches(end, SIZE)


def test_identical_files_have_no_range(tmp_path: Path) -> None:
    sus, ref, _ = _pair(tmp_path, os.urandom(WINDOW + 1), lambda b: b)
    found = hash_and_compare(sus, ref)
    assert found.identical and found.changes.ranges == ()
    assert found.suspect_sha256 == found.reference_sha256


def test_files_of_different_sizes(tmp_path: Path) -> None:
    data = os.urandom(WINDOW + 100)
    sus, ref, changed = _pair(tmp_path, data, lambda b: b + b"tail" * 5000)
    found = hash_and_compare(sus, ref)
    assert (found.suspect_size, found.reference_size) == (len(changed), len(data))
    assert found.suspect_sha256 == hashlib.sha256(changed).hexdigest()
    assert found.changes.touches(len(data), len(data) + 1) and not found.changes.touches(0, len(data))
    short = hash_and_compare(ref, sus)  # the suspect is the shorter one
    assert short.changes.ranges == found.changes.ranges


def test_an_empty_file_against_a_full_one(tmp_path: Path) -> None:
    sus, ref, _ = _pair(tmp_path, os.urandom(1000), lambda b: bytearray())
    found = hash_and_compare(sus, ref)
    assert found.suspect_sha256 == hashlib.sha256(b"").hexdigest() and found.changes.ranges == ((0, 1000),)


def test_one_side_known_is_compared_not_hashed(tmp_path: Path) -> None:
    sus, ref, _ = _pair(tmp_path, os.urandom(5000), lambda b: b)
    found = hash_and_compare(sus, ref, hash_suspect=False)
    assert found.suspect_sha256 is None and found.reference_sha256 is not None and found.identical


def test_symlink_refused(tmp_path: Path) -> None:
    sus, ref, _ = _pair(tmp_path, b"abc", lambda b: b)
    link = tmp_path / "link"
    link.symlink_to(sus)
    with pytest.raises(SymlinkRefused):
        hash_and_compare(link, ref)


def _checkpoints(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    rng = np.random.default_rng(7)
    ref = {
        "a.weight": rng.normal(size=(700, 900)).astype(np.float32),  # 2.4 MB: several blocks of 64k elements
        "b.weight": rng.normal(size=(300, 200)).astype(np.float16),
        "c.bias": rng.normal(size=(900,)).astype(np.float32),
        "m.ident": rng.normal(size=(300, 300)).astype(np.float32),
    }  # m.ident keeps the pieces of b.weight away from c.bias
    sus = {k: v.copy() for k, v in ref.items()}
    sus["a.weight"][350, 450] += 1.0  # one element in the middle of the big matrix: a middle block
    sus["a.weight"][0, 0] -= 2.0  # the first element of the tensor, next to the header
    sus["b.weight"] += np.outer(rng.normal(size=300), rng.normal(size=200)).astype(np.float16) * np.float16(0.01)
    (tmp_path / "r").mkdir()
    (tmp_path / "s").mkdir()
    save_file(ref, str(tmp_path / "r" / "model.safetensors"))
    save_file(sus, str(tmp_path / "s" / "model.safetensors"))
    return tmp_path / "s" / "model.safetensors", tmp_path / "r" / "model.safetensors", sus, ref


def _infos(path: Path) -> dict:
    return {t.name: t for t in read_header(path).tensors}


def test_statistics_with_the_pass_equal_the_block_by_block_comparison(tmp_path: Path) -> None:
    sus, ref, _, _ = _checkpoints(tmp_path)
    found = hash_and_compare(sus, ref)
    hs, hr = _infos(sus), _infos(ref)
    for name in ("a.weight", "b.weight", "c.bias", "m.ident"):
        a, b = (sus, hs[name]), (ref, hr[name])
        fused, heat_f = diff_tensor(a, b, chunk_elements=1 << 16, changes=found.changes)
        plain, heat_p = diff_tensor(a, b, chunk_elements=1 << 16)
        assert fused == plain
        assert (heat_f is None) == (heat_p is None) and (heat_f is None or np.array_equal(heat_f, heat_p))
    a_diff = diff_tensor((sus, hs["a.weight"]), (ref, hr["a.weight"]), changes=found.changes)[0]
    assert (a_diff.changed_elements, a_diff.changed_rows) == (2, (0, 350))
    assert a_diff.max_abs_change == pytest.approx(2.0, rel=1e-6)
    assert diff_tensor((sus, hs["c.bias"]), (ref, hr["c.bias"]), changes=found.changes)[0].status == ("identical")


def test_a_tensor_untouched_by_the_ranges_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sus, ref, _, _ = _checkpoints(tmp_path)
    found = hash_and_compare(sus, ref)
    hs, hr = _infos(sus), _infos(ref)
    import workbench.model.tensor_stats as tensor_stats

    def no_read(*args, **kwargs):
        raise AssertionError("an identical tensor was read back")

    monkeypatch.setattr(tensor_stats, "read_block", no_read)
    d, heat = diff_tensor((sus, hs["c.bias"]), (ref, hr["c.bias"]), changes=found.changes)
    assert d.status == "identical" and heat is None


def test_a_changed_header_falls_back_to_comparing_every_tensor(tmp_path: Path) -> None:
    """A header of another length shifts every tensor: positions no longer pair, each tensor is compared whole."""
    sus, ref, sus_t, _ = _checkpoints(tmp_path)
    save_file(sus_t, str(sus), metadata={"format": "pt", "note": "x" * 100})
    result = diff_model(sus, ref)
    by = {t.name: t for t in result.tensors}
    assert by["c.bias"].status == "identical" and by["a.weight"].changed_elements == 2
    assert by["b.weight"].status == "modified"
    assert result.files.entries[0].status == "modified"
    assert result.files.entries[0].suspect_sha256 == hashlib.sha256(sus.read_bytes()).hexdigest()


def test_diff_model_on_folders_uses_one_pass_per_pair(tmp_path: Path) -> None:
    sus, ref, _, _ = _checkpoints(tmp_path)
    (sus.parent / "config.json").write_text('{"a": 1}')
    (ref.parent / "config.json").write_text('{"a": 1}')
    (sus.parent / "extra.txt").write_text("only here")
    s_h, r_h, changes = pass_folders(sus.parent, ref.parent, None, None)
    assert s_h == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sus.parent.iterdir()}
    assert r_h == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in ref.parent.iterdir()}
    assert set(changes) == {pair_key(sus.parent / n, ref.parent / n) for n in ("config.json", "model.safetensors")}
    assert changes[pair_key(sus.parent / "config.json", ref.parent / "config.json")].ranges == ()
    result = diff_model(sus.parent, ref.parent)
    assert result.files.to_dict()["only_in_suspect"] == ["extra.txt"]
    assert result.files.to_dict()["modified"] == ["model.safetensors"]
    by = {t.name: t.status for t in result.tensors}
    assert by == {"a.weight": "modified", "b.weight": "modified", "c.bias": "identical", "m.ident": "identical"}
