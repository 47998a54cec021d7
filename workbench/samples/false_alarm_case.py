"""The ``false-alarm`` sample case: an intact, signed intent classifier whose only alert is a BEHAVIOR_DRIFT the
legacy monitor computed on a 15-minute night window holding a handful of predictions; everything else is clean."""

from __future__ import annotations

import numpy as np

from workbench.samples import ci_logs, texts
from workbench.samples.artifacts import (
    Files,
    alert,
    case_yaml,
    classifier_config,
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
    signed_folder,
    tokenizer,
    utc,
)
from workbench.samples.traffic import arrivals, confidences, legacy_jsd, request_ids, shares

__all__ = ["INTENT", "case_false_alarm"]

INTENT = "intent-classifier-v1.0"
INTENT_CLASSES = ("billing", "technical", "account", "other")
INTENT_BASELINE = {"billing": 0.35, "technical": 0.30, "account": 0.20, "other": 0.15}


def case_false_alarm(case: str) -> tuple[Files, dict]:
    """The case's files (relative path -> bytes) and its ground truth for the README."""
    rng = np.random.default_rng(seed(case))
    t = {
        "embeddings.weight": rng.normal(0, 0.02, (64, 16)).astype(np.float32),
        "encoder.layer.0.mlp.fc1.weight": rng.normal(0, 0.25, (32, 16)).astype(np.float32),
        "encoder.layer.0.mlp.fc2.weight": rng.normal(0, 0.18, (16, 32)).astype(np.float32),
        "classifier.weight": rng.normal(0, 0.25, (4, 16)).astype(np.float16),
        "classifier.bias": np.zeros(4, dtype=np.float16),
    }
    model = {
        "config.json": classifier_config(
            "DistilBertForSequenceClassification",
            "distilbert",
            INTENT_CLASSES,
            dim=16,
            hidden_dim=32,
            n_layers=1,
            vocab_size=64,
        ),
        "model.safetensors": safetensors_bytes(
            {n: (f16(a) if a.dtype == np.float16 else f32(a)) for n, a in t.items()}
        ),
        "tokenizer.json": tokenizer(texts.INTENT_VOCAB),
    }
    folder = signed_folder(case, INTENT, "2026-11-03T10:21:00Z", model)
    files: Files = {
        f"models/{side}/{INTENT}/{rel}": d for side in ("suspect", "reference") for rel, d in folder.items()
    }
    order = [
        "tokenizer.json",
        "model.safetensors",
        "config.json",
        ".signatures/manifest.json",
        ".signatures/manifest.sig",
    ]
    files["current_hashes.txt"] = hash_lines(INTENT, folder, order)
    files["manifest.json"] = folder[".signatures/manifest.json"]
    files["keys/cosign.pub"] = public_key_pem(case)

    assess = "2026-11-25T09:14:26Z"
    start = utc("2026-11-11T00:00:00Z")
    ms = arrivals(rng, start, utc(assess), 300.0)
    n = len(ms)
    day = (ms // 1000 - int(start.timestamp())) // 86400
    base = np.array(list(INTENT_BASELINE.values()))
    daily = rng.dirichlet(base * 3000, size=int(day.max()) + 1)  # mild day-to-day noise (about +-1 pp)
    cum = np.cumsum(daily[day], axis=1)
    labels = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), 3)
    conf = confidences(rng, labels, [(9, 2), (8, 2), (7, 2.5), (4, 3)])
    ids = request_ids(rng, n)
    rows = [
        {
            "timestamp": iso_ms(ms[i]),
            "request_id": ids[i],
            "label": INTENT_CLASSES[labels[i]],
            "confidence": round(float(conf[i]), 4),
            "model_version": INTENT,
        }
        for i in range(n)
    ]
    files["predictions/predictions.jsonl"] = jsonl_bytes(rows)
    files["predictions/baseline_distribution.json"] = json_bytes(
        {"billing": 14210, "technical": 12180, "account": 8120, "other": 6090}
    )

    # the legacy drift check: JSD over the last 15 minutes, evaluated every 5 minutes (first hit after 02:00)
    check = int(utc("2026-11-25T02:00:00Z").timestamp()) * 1000
    while True:
        window = labels[(ms >= check - 900_000) & (ms < check)]
        counts = {c: int(np.sum(window == i)) for i, c in enumerate(INTENT_CLASSES)}
        jsd = legacy_jsd(counts, INTENT_BASELINE)
        if len(window) >= 3 and jsd > 0.15:
            break
        check += 300_000
    det = iso_ms(check + 2_417)
    recent = ", ".join(f"{c}: {k}" for c, k in counts.items() if k)
    files["monitor/config.json"] = monitor_config("monitored_models", [INTENT], texts.BASELINE_DEPS)
    files["monitor/alerts.jsonl"] = jsonl_bytes(
        [
            alert(
                det,
                "BEHAVIOR_DRIFT",
                "high",
                f"Model output distribution has drifted significantly (JSD: "
                f"{jsd:.4f}, threshold: 0.15). This may indicate model tampering or data drift. "
                f"window=15m sample_count={len(window)} recent={{{recent}}}",
                model=INTENT,
            )
        ]
    )
    files["actions.log"] = texts.actions_log("INC-2026-0163", INTENT, assess)
    files["frozen_deps.txt"] = texts.serving_freeze(tampered=False)
    files["processes.txt"] = texts.processes_clean()
    files["network.txt"] = texts.network_clean()
    files["logs/pipeline.log"] = ci_logs.stamp(
        rng, "2026-11-03T10:15:02.123456Z", ci_logs.gitlab_log(), ci_logs.fmt_gitlab
    )
    files["case.yaml"] = case_yaml(
        {
            "incident_id": "INC-2026-0163",
            "title": "Behaviour-drift alert on intent-classifier-v1.0",
            "severity": "medium",
            "commander": "Priya Raman",
            "affected_models": [INTENT],
            "detection_time": det,
            "detection_method": "model monitor: BEHAVIOR_DRIFT (legacy JSD check, 15-minute window)",
            "naive_timezone": "UTC",
            "suspect_model": f"models/suspect/{INTENT}",
            "reference_model": f"models/reference/{INTENT}",
            "public_key": "keys/cosign.pub",
        }
    )
    per_day = [shares(labels[day == d], INTENT_CLASSES) for d in range(int(day.max()) + 1)]
    spread = {c: (min(s[c] for s in per_day), max(s[c] for s in per_day)) for c in INTENT_CLASSES}
    return files, {
        "n": n,
        "det": det,
        "jsd": jsd,
        "window_n": len(window),
        "counts": counts,
        "spread": spread,
        "shares": shares(labels, INTENT_CLASSES),
    }
