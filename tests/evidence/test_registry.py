from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import ClassVar

import pytest

from workbench.errors import UnsupportedEvidence
from workbench.evidence import REGISTRY, LoadContext, Loaded, Loader, detect_kind, load_file
from workbench.evidence import registry as registry_module
from workbench.evidence.registry import LoaderRegistry

ORDER = [
    "compromised_marker",
    "signature_manifest",
    "monitor_config",
    "baseline_distribution",
    "monitor_alerts",
    "predictions",
    "current_hashes",
    "frozen_deps",
    "processes",
    "network",
    "actions_log",
    "sweep_record",
    "pipeline_log",
]


class _Dummy(Loader):
    """Test loader.

    Columns:
        text (str): whole file.
    """

    name: ClassVar[str] = "dummy"
    columns: ClassVar[dict[str, str]] = {"text": "str"}

    def detect(self, path: Path) -> bool:
        return path.suffix == ".dummy"

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        return Loaded(self.name, ctx.relpath, self.make_frame([{"text": path.read_text()}]))


class _Exploding(_Dummy):
    """Raises in detect.

    Columns:
        text (str): never.
    """

    name: ClassVar[str] = "exploding"

    def detect(self, path: Path) -> bool:
        raise RuntimeError("boom")


def test_builtin_order():
    assert REGISTRY.names() == ORDER
    assert [loader.name for loader in REGISTRY] == ORDER
    assert len(REGISTRY) == len(ORDER) and "network" in REGISTRY


def test_register_goes_before_generic_loaders():
    reg = LoaderRegistry(list(REGISTRY))
    reg.register(_Dummy)
    assert reg.names()[-2:] == ["dummy", "pipeline_log"]
    reg.unregister("dummy")
    reg.register(_Dummy(), before="signature_manifest")
    assert reg.names()[:3] == ["compromised_marker", "dummy", "signature_manifest"]


def test_register_errors():
    reg = LoaderRegistry([_Dummy()])
    with pytest.raises(ValueError, match="already registered"):
        reg.register(_Dummy)
    with pytest.raises(KeyError, match="unknown loader"):
        reg.register(_Exploding, before="nope")
    with pytest.raises(ValueError, match="not an evidence Loader"):
        reg.register(object())  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="known: dummy"):
        reg.by_name("nope")


def test_detect_survives_a_raising_loader(tmp_path, caplog):
    reg = LoaderRegistry([_Exploding(), _Dummy()])
    path = tmp_path / "a.dummy"
    path.write_text("hi")
    with caplog.at_level(logging.WARNING):
        assert reg.detect(path).name == "dummy"
    assert "exploding" in caplog.text


def test_load_file_and_detect_kind(tmp_path):
    path = tmp_path / "frozen_deps.txt"
    path.write_text("numpy==1.26.4\n")
    assert detect_kind(path) == "frozen_deps"
    loaded = load_file(path, LoadContext("case/frozen_deps.txt"))
    assert loaded.kind == "frozen_deps" and loaded.path == "case/frozen_deps.txt"
    assert load_file(str(path)).path == str(path)
    assert load_file(path, kind="pipeline_log").kind == "pipeline_log"


def test_unsupported(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert detect_kind(path) is None
    with pytest.raises(UnsupportedEvidence) as info:
        load_file(path, LoadContext("suspect/model.safetensors"))
    assert info.value.path == "suspect/model.safetensors"


class _EP:
    def __init__(self, name: str, target: object) -> None:
        self.name, self.value, self._target = name, f"plugin:{name}", target

    def load(self) -> object:
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def test_entry_points(monkeypatch, caplog):
    eps = [_EP("broken", ImportError("no module named plugin")), _EP("dummy", _Dummy), _EP("junk", 42)]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: eps if group == "test.group" else [])
    reg = LoaderRegistry(list(REGISTRY), entry_point_group="test.group")
    with caplog.at_level(logging.WARNING):
        names = reg.names()
    assert names[-2:] == ["dummy", "pipeline_log"]
    assert "'broken'" in caplog.text and "'junk'" in caplog.text
    assert reg.names() == names  # read once


def _loose_folder(root: Path) -> dict[str, str | None]:
    """A loose folder where names do not help: file -> expected kind."""
    files: dict[str, tuple[str | bytes, str | None]] = {
        "model/config.json": (
            json.dumps({"architectures": ["BertForSequenceClassification"], "hidden_size": 768, "id2label": {}}),
            None,
        ),
        "model/vocab.json": (json.dumps({"[PAD]": 0, "[UNK]": 1, "hello": 2}), None),
        "model/tokenizer_config.json": (json.dumps({"model_max_length": 512, "do_lower_case": True}), None),
        "model/eval_results.json": (json.dumps({"eval_accuracy": 0.5, "eval_f1": 0.5}), None),
        "model/label2id.json": (json.dumps({"negative": 0, "positive": 1}), None),
        "model/model.safetensors": (b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"{}" + b" " * 14, None),
        "README.md": ("# Incident notes\nnumpy==1.26.4\n", None),
        "notes.txt": ("Called the vendor at 10:00.\nThey confirmed the torch==2.3.1 wheel.\n", None),
        "dist.json": (json.dumps({"positive": 0.5, "negative": 0.3, "neutral": 0.2}), "baseline_distribution"),
        "manifest_copy.json": (json.dumps({"files": {"model.safetensors": "ab" * 32}}), "signature_manifest"),
        "watch.json": (json.dumps({"models": [{"id": "m", "path": "/m", "critical": True}]}), "monitor_config"),
        "requirements-prod.txt": ("-i https://pypi.org/simple\ntorch==2.3.1\nnumpy==1.26.4\n", "frozen_deps"),
        "sums.txt": (f"{'ab' * 32} *model.safetensors\n", "current_hashes"),
        "host-ps.txt": ("USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\n", "processes"),
        "host-ss.txt": ("Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n", "network"),
        "served.csv": ("timestamp,request_id,predicted_class,confidence\n", "predictions"),
        "train.csv": ("text,label\nhello,positive\n", None),
        "events.jsonl": (
            '{"type": "FILE_MISSING", "model": "m", "timestamp": "2026-11-19T09:00:00Z"}\n',
            "monitor_alerts",
        ),
        "ir.log": ("[2026-11-19T09:05:12Z] ASSESS: Starting\n", "actions_log"),
        "logs/ci.log.gz": (gzip.compress(b"[2026-11-19T09:05:12Z] INFO: build\n"), "pipeline_log"),
        "logs/ci-2.log": ("[2026-11-19T09:05:12Z] INFO: build\n", "pipeline_log"),
        "logs/job.txt": ("step 1\n", "pipeline_log"),
        "m/COMPROMISED.txt": ("COMPROMISED - Incident I-1 - 2026-11-19T10:00:00Z\n", "compromised_marker"),
    }
    expected = {}
    for rel, (content, kind) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        expected[rel] = kind
    return expected


def test_loose_folder_confusions(tmp_path):
    expected = _loose_folder(tmp_path)
    actual = {rel: detect_kind(tmp_path / rel) for rel in expected}
    assert actual == expected


def test_detect_on_odd_paths(tmp_path):
    assert REGISTRY.detect(tmp_path) is None
    assert REGISTRY.detect(tmp_path / "nope.log") is None
    assert REGISTRY.detect("bad\x00path.log") is None
