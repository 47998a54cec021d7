"""Containers of the model scan (issue 12, classes 2 to 4): joblib layouts, archives member by member, TorchScript.

Each malicious file must give its finding, each benign twin must stay quiet. Pickles are assembled opcode by
opcode and archives written with :mod:`zipfile`, :mod:`tarfile` and ``py7zr`` (patched where a class needs it);
nothing is unpickled.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import lz4.frame
import pytest

from tests.model import hostile_fixtures as hf
from workbench.model.limits import ScanLimits
from workbench.model.scan import scan_model

BENIGN = Path(__file__).resolve().parents[1] / "data" / "benign"
CALL = hf.glob("posix", "system") + hf.uni("echo pwned") + hf.TUPLE1 + hf.REDUCE + hf.STOP
PAYLOAD = hf.PROTO(2) + CALL
EMPTY_TUPLE, NEWOBJ, BUILD, SETITEMS = b")", b"\x81", b"b", b"u"


def _scan(tmp_path: Path, files: dict[str, bytes], **kwargs):
    folder = tmp_path / "m"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return scan_model(folder, use_picklescan=False, **kwargs)


def _critical(scan) -> list[str]:
    return [
        f.title for f in scan.findings if f.category == "pickle_dangerous_import" and f.severity.value == "critical"
    ]


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ joblib
def _wrapper(dtype: str, shape: int, *, aligned: bool = False) -> bytes:
    """A joblib NumpyArrayWrapper object and its state, up to its BUILD (the array bytes follow it)."""
    state = hf.uni("shape") + b"K" + bytes([shape]) + hf.TUPLE1 + hf.uni("order") + hf.uni("C")
    state += hf.uni("dtype") + hf.glob("numpy", "dtype") + hf.uni(dtype) + hf.TUPLE1 + hf.REDUCE
    if aligned:
        state += hf.uni("numpy_array_alignment_bytes") + b"K\x10"
    return (hf.glob("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ + hf.EMPTY_DICT + hf.MARK
            + state + SETITEMS + BUILD)  # fmt: skip


def _joblib(tail: bytes, *, aligned: bool = False) -> bytes:
    array = struct.pack("<4d", 1.5, float("nan"), -2.0, 1e300)  # bytes that are not opcodes
    pad = b"\x03\x00\x00\x00" if aligned else b""
    return hf.PROTO(2) + _wrapper("f8", 4, aligned=aligned) + pad + array + hf.POP + tail


@pytest.mark.parametrize("aligned", [False, True])
def test_the_walk_steps_over_an_inline_array_to_the_payload(tmp_path, aligned):
    data = _joblib(CALL, aligned=aligned)
    scan = _scan(tmp_path, {"model.joblib": data})
    (art,) = scan.inventory.artefacts
    assert (art.kind, art.coverage) == ("joblib", "analysed")
    assert _critical(scan) == ["model.joblib: pickle imports posix.system: posix.system('echo pwned')"]
    imports = {i.qualified: i.offset for _, r in scan.inventory.pickles for i in r.imports}
    assert imports["posix.system"] == data.index(b"cposix")  # the offset in the file, arrays included


def test_an_object_array_carries_a_nested_stream_that_is_analysed(tmp_path):
    data = hf.PROTO(2) + _wrapper("O8", 1) + PAYLOAD + hf.POP + b"N."
    scan = _scan(tmp_path, {"model.joblib": data})
    assert _critical(scan) == ["model.joblib: pickle imports posix.system: posix.system('echo pwned')"]
    assert [a.coverage for a in scan.inventory.artefacts] == ["analysed"]


def test_benign_joblib_files_with_inline_arrays_are_analysed_whole(tmp_path):
    quiet = _scan(tmp_path, {"twin.joblib": _joblib(b"N.")})
    assert [(a.kind, a.coverage) for a in quiet.inventory.artefacts] == [("joblib", "analysed")]
    assert _critical(quiet) == [] and quiet.unexamined == []
    for rel in ("sklearn/random_forest.joblib", "sklearn/pipeline_logreg.joblib",
                "joblib-testdata/joblib_0.11.0_pickle_py36_np111.pkl"):  # fmt: skip
        real = scan_model(BENIGN / rel, use_picklescan=False)
        assert [(a.kind, a.coverage) for a in real.inventory.artefacts] == [("joblib", "analysed")], rel


_COMPRESSORS = {
    "model.joblib.z": lambda d: zlib.compress(d, 3),
    "model.joblib.gz": gzip.compress,
    "model.joblib.bz2": bz2.compress,
    "model.joblib.xz": lzma.compress,
    "model.joblib.lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "model.joblib.lz4": lz4.frame.compress,
}


@pytest.mark.parametrize("name", sorted(_COMPRESSORS))
def test_compressed_joblib_is_joblib_and_its_payload_found(tmp_path, name):
    scan = _scan(tmp_path, {name: _COMPRESSORS[name](_joblib(CALL))})
    (art,) = scan.inventory.artefacts
    assert (art.kind, art.coverage, art.details.get("disguised")) == ("joblib", "analysed", None)
    assert _critical(scan) == [f"{name}: pickle imports posix.system: posix.system('echo pwned')"]


@pytest.mark.parametrize("suffix", ["z", "gz", "bz2", "xz", "lzma", "lz4"])
def test_real_compressed_joblib_files_are_joblib_not_disguised(suffix):
    scan = scan_model(BENIGN / "sklearn" / f"pipeline_logreg.joblib.{suffix}", use_picklescan=False)
    (art,) = scan.inventory.artefacts
    assert (art.kind, art.coverage, art.details.get("disguised")) == ("joblib", "analysed", None)
    assert [f for f in scan.findings if f.severity.value == "critical"] == []


def test_joblib_zf_container_is_decompressed():
    scan = scan_model(BENIGN / "joblib-testdata" / "joblib_0.9.2_compressed_pickle_py35_np19.gz", use_picklescan=False)
    (art,) = scan.inventory.artefacts
    assert (art.details.get("compression"), art.coverage, art.dangerous) == ("joblib_zf", "analysed", True)


# ------------------------------------------------------------------------------------------------ archives
def test_one_bad_7z_member_name_hides_nothing(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.set_encoded_header_mode(False)
        archive.writestr(b"harmless", "__/escape.txt")
        archive.writestr(PAYLOAD, "data.pkl")
    data = bytearray(buf.getvalue())
    at = data.index("__/escape.txt".encode("utf-16-le"))
    data[at : at + 4] = "..".encode("utf-16-le")
    offset, size = struct.unpack_from("<QQ", data, 12)
    struct.pack_into("<I", data, 28, zlib.crc32(bytes(data[32 + offset : 32 + offset + size])))
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:32])))
    scan = _scan(tmp_path, {"m.7z": bytes(data)})
    assert _critical(scan) == ["m.7z [data.pkl]: pickle imports posix.system: posix.system('echo pwned')"]
    assert ("m.7z", "../escape.txt", "unsafe_path") in {(p, a.member, a.kind) for p, a in scan.inventory.anomalies}
    twin = io.BytesIO()
    with py7zr.SevenZipFile(twin, "w") as archive:
        archive.writestr(hf.benign_dict(), "data.pkl")
    quiet = _scan(tmp_path / "b", {"m.7z": twin.getvalue()})
    assert _critical(quiet) == [] and quiet.inventory.anomalies == [] and quiet.unexamined == []


def _flag_encrypted(data: bytes) -> bytes:
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.index(sig)
        flags = struct.unpack_from("<H", data, pos + flag_at)[0] | 1
        data = data[: pos + flag_at] + struct.pack("<H", flags) + data[pos + flag_at + 2 :]
    return data


def test_an_encrypted_member_is_not_analysed_or_read_as_pytorch_reads_it(tmp_path):
    cipher = bytes((i * 37 + 11) % 256 for i in range(512))  # stands for cipher text: no known format
    scan = _scan(tmp_path, {"secret.zip": _flag_encrypted(_zip({"blob.bin": cipher})),
                            "flag.pt": _flag_encrypted(hf.torch_zip(hf.global_reduce()))})  # fmt: skip
    cov = {(a.path, a.member): a.coverage for a in scan.inventory.artefacts}
    assert cov[("secret.zip", "blob.bin")].startswith("not analysed: encrypted")
    assert cov[("secret.zip", None)].startswith("partially analysed: 1 member(s) not fully analysed")
    assert cov[("flag.pt", "archive/data.pkl")].startswith("partially analysed: encryption flag set")
    assert _critical(scan) == ["flag.pt [archive/data.pkl]: pickle imports posix.system: posix.system('echo pwned')"]
    assert not any(a.kind == "bad_crc" for _, a in scan.inventory.anomalies)


def test_local_and_central_headers_that_disagree_are_an_anomaly(tmp_path):
    data = bytearray(_zip({"archive/data.pkl": hf.benign_dict()}))
    struct.pack_into("<H", data, 8, zipfile.ZIP_DEFLATED)  # the local header now says deflate
    scan = _scan(tmp_path, {"m.pt": bytes(data), "twin.pt": _zip({"archive/data.pkl": hf.benign_dict()})})
    got = [(p, a.member, a.kind, a.detail.split(":")[0]) for p, a in scan.inventory.anomalies]
    assert got == [("m.pt", "archive/data.pkl", "header_mismatch", "method 8 locally, 0 in the central directory")]
    assert any(f.category == "archive_anomaly" and "header mismatch" in f.title for f in scan.findings)


def test_a_data_pkl_after_ten_thousand_members_is_found(tmp_path):
    members = {f"archive/data/{i}": b"\0\0\0\0" for i in range(10_000)}
    members["archive/data.pkl"] = hf.global_reduce()
    scan = _scan(tmp_path, {"big.pt": _zip(members)})
    assert _critical(scan) == ["big.pt [archive/data.pkl]: pickle imports posix.system: posix.system('echo pwned')"]
    assert scan.unexamined == [
        "big.pt: 10001 members; only the first 10000 are examined (and 1 of the 1 named like a pickle after them)"
    ]
    top = next(a for a in scan.inventory.artefacts if a.member is None)
    assert (top.kind, top.coverage.split(":")[0]) == ("pytorch_zip", "partially analysed")


def test_a_zip_nested_three_deep_is_scanned_and_one_past_the_depth_cap_is_reported(tmp_path):
    data = hf.global_reduce()
    for level in range(3):
        data = _zip({f"level{level}.zip" if level else "p.pkl": data})
    scan = _scan(tmp_path, {"nest.zip": data})
    assert _critical(scan) == [
        "nest.zip [level2.zip!level1.zip!p.pkl]: pickle imports posix.system: posix.system('echo pwned')"
    ]
    assert scan.unexamined == []
    shallow = _scan(tmp_path / "d", {"nest.zip": data}, limits=ScanLimits(max_depth=2))
    cov = {a.member: a.coverage for a in shallow.inventory.artefacts}
    assert cov["level2.zip!level1.zip"] == "not analysed: archive nested 2 deep: not opened"
    assert cov[None].startswith("partially analysed: 1 member(s) not fully analysed")
    assert shallow.unexamined == ["nest.zip [level2.zip!level1.zip]: archive nested 2 deep: not opened"]
    assert _critical(shallow) == []


def _legacy_tar(pickle_member: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (
            ("sys_info", hf.PROTO(2) + hf.EMPTY_DICT + hf.STOP),
            ("pickle", pickle_member),
            ("storages", hf.PROTO(2) + b"K\x00" + hf.STOP),
            ("tensors", hf.PROTO(2) + b"K\x00."),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_legacy_tar_checkpoint_is_recognised_and_its_pickles_scanned(tmp_path):
    scan = _scan(tmp_path, {"old.pt": _legacy_tar(hf.global_reduce()), "twin.pt": _legacy_tar(hf.benign_dict())})
    kinds = {(a.path, a.member): (a.kind, a.details.get("disguised")) for a in scan.inventory.artefacts}
    assert kinds[("old.pt", None)] == ("pytorch_legacy_tar", None)
    assert kinds[("twin.pt", "pickle")] == ("pickle", None)  # named as torch names it: not in disguise
    assert _critical(scan) == ["old.pt [pickle]: pickle imports posix.system: posix.system('echo pwned')"]
    assert not any(f.severity.value == "critical" and "twin.pt" in f.title for f in scan.findings)


def _npy(descr: str, data: bytes, *, pad_to: int = 0) -> bytes:
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}"
    header += " " * max(0, pad_to - len(header))
    header += " " * (63 - (12 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header.encode("latin-1") + data


def test_npz_with_an_lzma_member_is_analysed(tmp_path):
    evil = _zip({"a.npy": _npy("'|O'", hf.global_reduce())}, zipfile.ZIP_LZMA)
    quiet = _zip({"a.npy": _npy("'<f4'", struct.pack("<f", 1.0))}, zipfile.ZIP_LZMA)
    scan = _scan(tmp_path, {"evil.npz": evil, "quiet.npz": quiet})
    assert _critical(scan) == ["evil.npz [a.npy]: pickle imports posix.system: posix.system('echo pwned')"]
    assert {(a.path, a.member): a.coverage for a in scan.inventory.artefacts} == {
        ("evil.npz", "a.npy"): "analysed", ("evil.npz", None): "analysed",
        ("quiet.npz", "a.npy"): "analysed", ("quiet.npz", None): "analysed",
    }  # fmt: skip


def test_unsupported_zip_compression_is_not_analysed(tmp_path):
    data = bytearray(_zip({"a.npy": _npy("'<f4'", struct.pack("<f", 1.0))}))
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        struct.pack_into("<H", data, data.index(sig) + at, 93)  # zstandard: not read
    scan = _scan(tmp_path, {"z.npz": bytes(data)})
    cov = {a.member: a.coverage for a in scan.inventory.artefacts}
    assert cov["a.npy"] == "not analysed: unsupported compression (zip method 93)"
    assert scan.unexamined == ["z.npz [a.npy]: unsupported compression (zip method 93)"]


@pytest.mark.parametrize(("descr", "pad"), [("'object'", 0), ("[('a', 'O')]", 0), ("'|O'", 70_000)])
def test_npy_object_arrays_and_huge_headers_are_analysed(tmp_path, descr, pad):
    scan = _scan(tmp_path, {"a.npy": _npy(descr, hf.global_reduce(), pad_to=pad)})
    assert _critical(scan) == ["a.npy: pickle imports posix.system: posix.system('echo pwned')"]
    assert [a.coverage for a in scan.inventory.artefacts] == ["analysed"]


def test_npy_of_numbers_is_quiet(tmp_path):
    scan = _scan(tmp_path, {"a.npy": _npy("'<f8'", struct.pack("<d", 2.0), pad_to=70_000)})
    assert scan.findings == [] and scan.unexamined == []


def test_a_pickle_padded_past_the_bomb_ratio_is_scanned_within_bounds(tmp_path):
    padding = 8 * 1024 * 1024
    pad = hf.PROTO(2) + b"B" + struct.pack("<I", padding) + bytes(padding) + hf.POP
    data = _zip({"archive/data.pkl": pad + CALL, "archive/version": b"3\n"}, zipfile.ZIP_DEFLATED)
    scan = _scan(tmp_path, {"padded.pt": data})
    assert any(a.kind == "decompression_bomb" for _, a in scan.inventory.anomalies)
    assert _critical(scan) == ["padded.pt [archive/data.pkl]: pickle imports posix.system: posix.system('echo pwned')"]
    capped = _scan(tmp_path / "c", {"padded.pt": data}, limits=ScanLimits(bomb_scan_bytes=1 << 20))
    cov = {a.member: a.coverage for a in capped.inventory.artefacts}
    assert cov["archive/data.pkl"].startswith("partially analysed: decompression bomb: only its first 1048576")


# ------------------------------------------------------------------------------------------------ TorchScript
def test_torchscript_debug_pickles_are_not_in_disguise():
    scan = scan_model(BENIGN / "torch" / "resnet_tiny_lite.ptl", use_picklescan=False)
    debug = [a for a in scan.inventory.artefacts if (a.member or "").endswith(".debug_pkl")]
    assert debug and all(not a.details.get("disguised") for a in debug)
    assert [f.title for f in scan.findings if f.severity.value == "critical"] == []


def test_a_debug_pkl_outside_torchscript_is_still_in_disguise(tmp_path):
    scan = _scan(tmp_path, {"bundle.zip": _zip({"notes.debug_pkl": hf.global_reduce()}),
                            "x.debug_pkl": hf.global_reduce()})  # fmt: skip
    disguised = sorted((a.path, a.member) for a in scan.inventory.artefacts if a.details.get("disguised"))
    assert disguised == [("bundle.zip", "notes.debug_pkl"), ("x.debug_pkl", None)]


def test_pickles_after_raw_storage_bytes_of_a_legacy_tar_leave_it_partial(tmp_path):
    """torch reads one pickle per storage between raw bytes: what the walk cannot follow there is said, not passed."""
    buf = io.BytesIO()
    storages = hf.PROTO(2) + b"K\x01." + bytes(40) + hf.global_reduce()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("sys_info", hf.benign_dict()), ("pickle", hf.benign_dict()), ("storages", storages),
                           ("tensors", hf.PROTO(2) + b"K\x00.")):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    scan = _scan(tmp_path, {"old.pt": buf.getvalue()})
    assert scan.unexamined == [
        "old.pt [storages]: legacy tar checkpoint: the raw storage bytes from offset 5 and the pickles torch reads "
        "between them are not followed"
    ]
    assert next(a for a in scan.inventory.artefacts if a.member is None).coverage.startswith("partially analysed")


def test_a_central_directory_over_its_cap_is_not_listed(tmp_path):
    members = {f"d/{i}": b"" for i in range(50)}
    scan = _scan(tmp_path, {"wide.zip": _zip(members)}, limits=ScanLimits(max_central_bytes=1024))
    (art,) = scan.inventory.artefacts
    assert art.coverage.startswith("not analysed: central directory of ")
    assert len(scan.unexamined) == 1 and scan.unexamined[0].startswith("wide.zip: central directory of ")
    assert _scan(tmp_path / "b", {"wide.zip": _zip(members)}).unexamined == []
