"""Text leaving the model readers is valid Unicode (issue 11, point 3): safetensors headers, pickle strings, configs,
chat templates, tar member names. Each hostile file is crafted byte by byte and read through the real parsers; every
result is encoded to UTF-8 (what the report, findings.json and the CLI do), which raised UnicodeEncodeError before.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import tarfile
from pathlib import Path

from workbench.model.configdiff import diff_configs
from workbench.model.dirdiff import diff_model
from workbench.model.pickles import analyse_pickle_bytes
from workbench.model.safetensors_format import header_findings, read_header
from workbench.model.scan import scan_model
from workbench.textsafe import REPLACEMENT

LONE = "\\ud800"  # a JSON escape decoding to a lone surrogate
UTF8_SURROGATE = b"\xed\xa0\x80"  # U+D800 encoded as UTF-8: pickletools decodes it (surrogatepass)


def _encodes(obj) -> str:
    text = json.dumps(obj, ensure_ascii=False, default=str)
    text.encode("utf-8")
    return text


def _header_file(path: Path, header: str, data: bytes) -> Path:
    body = header.encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def test_safetensors_tensor_names_and_metadata(tmp_path):
    header = ('{"w' + LONE + '":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
              '"__metadata__":{"note' + LONE + '":"x' + LONE + '"}}')  # fmt: skip
    h = read_header(_header_file(tmp_path / "m.safetensors", header, bytes(4)))
    assert [t.name for t in h.tensors] == [f"w{REPLACEMENT}"]
    assert h.metadata == {f"note{REPLACEMENT}": f"x{REPLACEMENT}"}
    assert [v.code for v in h.violations] == ["lone_surrogate"]  # the safetensors library refuses such a header
    _encodes([f.to_dict() for f in header_findings(h, "m.safetensors")])


def test_diff_model_with_surrogate_tensor_names_and_config_keys(tmp_path):
    ref, sus = tmp_path / "ref", tmp_path / "sus"
    for folder, value in ((ref, 1.0), (sus, 2.0)):
        folder.mkdir()
        header = '{"layer' + LONE + '.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
        _header_file(folder / "model.safetensors", header, struct.pack("<f", value))
        (folder / "config.json").write_text('{"arch' + LONE + '": "' + str(value) + '"}')
    diff = diff_model(sus, ref)
    text = _encodes(diff.to_dict())
    assert f"layer{REPLACEMENT}.weight" in text and f"arch{REPLACEMENT}" in text
    assert any(t.status == "modified" for t in diff.tensors)


def test_config_diff_names_the_file_whose_text_was_replaced(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "config.json").write_text('{"k": 1}')
    (tmp_path / "b" / "config.json").write_text('{"k": "v' + LONE + '"}')
    changes, warnings = diff_configs(tmp_path / "b", tmp_path / "a", ["config.json"])
    assert [(c.key, c.suspect) for c in changes] == [("k", f"'v{REPLACEMENT}'")]
    assert [(w.path, w.reason) for w in warnings] == [
        ("config.json", "JSON text is not valid Unicode (lone UTF-16 surrogate): replaced with U+FFFD")]  # fmt: skip


def test_pickle_strings_with_surrogates(tmp_path):
    mod = b"os" + UTF8_SURROGATE
    arg = b"echo " + UTF8_SURROGATE
    data = (b"\x80\x04" + b"\x8c" + bytes([len(mod)]) + mod + b"\x8c\x06system\x93"
            + b"X" + struct.pack("<I", len(arg)) + arg + b"\x85R.")  # fmt: skip
    report = analyse_pickle_bytes(data)
    assert [i.module for i in report.imports] == [f"os{REPLACEMENT}"]
    assert report.calls and REPLACEMENT in report.calls[0].text
    assert any("not valid Unicode" in p for p in report.problems)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "state.pkl").write_bytes(data)
    scan = scan_model(tmp_path / "m", use_picklescan=False)
    _encodes(scan.to_json())


def test_chat_template_with_a_surrogate_is_analysed_not_crashed(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    template = "{{ messages" + LONE + " }}{{ ''.__class__.__mro__ }}"
    (model / "tokenizer_config.json").write_text('{"chat_template": "' + template + '"}')
    scan = scan_model(model, use_picklescan=False)
    assert [c.ref.kind for c in scan.inventory.code]  # the gadget is still found
    assert any("not valid Unicode" in w.reason for w in scan.warnings)
    _encodes(scan.to_json())


def test_tar_member_names_that_are_not_utf8(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", encoding="utf-8", errors="surrogateescape") as tf:
        info = tarfile.TarInfo("data/a\udcff.pkl")  # written as the byte 0xff
        payload = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R."
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "bundle.tar").write_bytes(buf.getvalue())
    scan = scan_model(tmp_path / "m", use_picklescan=False)
    members = [a.member for a in scan.inventory.artefacts if a.member]
    assert members == [f"data/a{REPLACEMENT}.pkl"]
    assert any(f.category == "pickle_dangerous_import" for f in scan.findings)
    _encodes(scan.to_json())


def test_sample_model_scan_is_unchanged_by_cleaning(tmp_path):
    src = Path(__file__).resolve().parents[2] / "evidence-samples" / "tampered-weights" / "models" / "suspect"
    shutil.copytree(src, tmp_path / "s")
    scan = scan_model(tmp_path / "s", use_picklescan=False)
    assert not any("not valid Unicode" in w.reason for w in scan.warnings)
