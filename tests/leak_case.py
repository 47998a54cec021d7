"""A case folder with one secret of each credential kind planted in each kind of evidence (for tests/test_leaks.py).

Every value is fake but has the real format of its kind, so that the shipped credential rules must catch it. Each
secret is planted in its usual context (``PGPASSWORD=…``, ``postgres://user:…@``, ``AccountKey=…``) in: a log
line, a file name (the kinds whose form fits in one), case.yaml's title, commander and detection method (the
comms drafts read them), a pickle's call arguments (bytes written opcode by opcode, never unpickled), a model
config.json value, a prediction label, a monitor alert message and file, a process command line, a network
capture's process column, and frozen_deps URLs. Also planted: a GCP service-account key and a PEM private key (in
the log and the config).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

PEM_BODY = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDf3Lq8vTz0Kx7w",
    "Qm2Rk9sYp4Hn6Jc1Vb8Xa3Zt5Ue7Wi0Oy2Lr4Ns6Md8Fg1Ah3Sj5Dk7Gl9Pq0Tw2",
]
#: kind -> (secret value that must never appear in an output, the text that plants it)
SECRETS: dict[str, tuple[str, str]] = {
    "slack-bot": ("xoxb-2718281828459-3141592653589-Lk8Jh7Gf6Ds5Aq4Wz3Xe2Rc1",) * 2,
    "slack-user": ("xoxp-2718281828-2718281828-3141592653589-0a1b2c3d4e5f60718293a4b5c6d7e8f9",) * 2,
    "slack-app": ("xapp-1-A05KJQ2RD1Z-6021504237410-9f8e7d6c5b4a39281706f5e4d3c2b1a0",) * 2,
    "slack-webhook": ("T05KJQ2RD1Z/B06A1B2C3D4/Zx8Cv7Bn6Mq5Wr4Et3Yu2Ia1",
                      "https://hooks.slack.com/services/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"),
    "github": ("ghp_Vq3Lm8Ns2Kd7Hf4Tg9Rj1Wb6Xc5Ye0Za3Pu8",) * 2,
    "github-fine-grained": ("github_pat_11ABQ7WXY0Lk8Jh7Gf6Ds5_Aq4Wz3Xe2Rc1Tv0By9Nu8Mi7Ko6Lp5Qa4Sw3Ed2Rf1Tg0",) * 2,
    "gitlab": ("glpat-Mn4Bv5Cx6Zl7Kj8Hg9Fd",) * 2,
    "npm": ("npm_Rt5Yu6Io7Pa8Sd9Fg0Hj1Kl2Zx3Cv4Bn5Mq6",) * 2,
    "pypi": ("pypi-AgEIcHlwaS5vcmcCJGQ3ZjhhOWIwLWMxZDItNGUzZi1hNWI2LWM3ZDhlOWYwYTFiMgACKlszLCJxd2UiXQ",) * 2,
    "huggingface": ("hf_Wq2Er3Ty4Ui5Op6As7Df8Gh9Jk0Lz1Xc2Vb3",) * 2,
    "aws-access-key-id": ("AKIAZ7QK3MNP4RSTUV2W",) * 2,
    "aws-secret-access-key": ("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",
                              "AWS_SECRET_ACCESS_KEY=Jk8Lm9Nb0Vc1Xz2Aq3Sw4De5Fr6Gt7Hy8Uj9Ik0O"),
    "aws-session-token": ("IQoJb3JpZ2luX2VjEPz0Qa9Ws8Ed7Rf6Tg5Yh4Uj3Ik2Ol1Pm0Nn9Bb8Vv7Cc6Xx5Zz4",
                          "AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEPz0Qa9Ws8Ed7Rf6Tg5Yh4Uj3Ik2Ol1Pm0Nn9Bb8Vv7Cc6Xx5Zz4"),
    "gcp-api-key": ("AIzaSyLp5Ko6Ji7Hu8Gy9Ft0Dr1Se2Wa3Qz4Xc5",) * 2,
    "azure-account-key": (
        "Qz8Wx7Ec6Rv5Tb4Yn3Um2Ik1Ol0Pa9Sd8Df7Gh6Jk5Lq4Wr3Et2Yu1Io0Pz9Xm8Cn7Vb6Bn5Mm4Aa3Ss2Dd1Ff0Gg==",
        "DefaultEndpointsProtocol=https;AccountName=acmemodels;AccountKey="
        "Qz8Wx7Ec6Rv5Tb4Yn3Um2Ik1Ol0Pa9Sd8Df7Gh6Jk5Lq4Wr3Et2Yu1Io0Pz9Xm8Cn7Vb6Bn5Mm4Aa3Ss2Dd1Ff0Gg==;"
        "EndpointSuffix=core.windows.net",
    ),
    "azure-sas": ("Hq2Jw3Ke4Lr5Mt6Ny7Pu8Qi9Ro0Sp1%2BTa2Ub3Vc%3D",
                  "https://acmemodels.blob.core.windows.net/models/m.bin?sv=2022-11-02&sp=r&sig="
                  "Hq2Jw3Ke4Lr5Mt6Ny7Pu8Qi9Ro0Sp1%2BTa2Ub3Vc%3D"),
    "postgres-url": ("Pg7Url.Pw-5521", "postgres://feast:Pg7Url.Pw-5521@10.0.4.12:5432/features"),
    "mysql-url": ("My4Sql.Pass-6632", "mysql://mlflow:My4Sql.Pass-6632@db.acme.internal/mlflow"),
    "mongodb-url": ("Mg2Db.Key-7743", "mongodb+srv://trainer:Mg2Db.Key-7743@cluster0.ab1cd.mongodb.net/runs"),
    "redis-url": ("Rd9Cache.Pw-8854", "redis://:Rd9Cache.Pw-8854@cache.acme.internal:6379/0"),
    "pgpassword": ("Pg-Env-Pw-9965", "PGPASSWORD=Pg-Env-Pw-9965"),
    "passwd": ("Ms-Passwd-1076", "MYSQL_PASSWD=Ms-Passwd-1076"),
    "secret": ("Wh-Secret-2187", "GITHUB_WEBHOOK_SECRET=Wh-Secret-2187"),
    "jwt": ("eyJhbGciOiJSUzI1NiIsImtpZCI6Ik1UIn0.eyJzdWIiOiJyZXBvOmFjbWUvZmVhc3QiLCJhdWQiOiJzdHMueCJ9."
            "Zm9yZ2VkLXNpZ25hdHVyZS1ieXRlcy0xMjM0NTY3OA",) * 2,
}  # fmt: skip
#: secrets planted only where multi-line or structured text fits (log, config)
BLOCK_SECRETS = {"private-key": PEM_BODY[0], "gcp-service-account-key": PEM_BODY[1]}
ALL_SECRETS = {**{k: v for k, (v, _) in SECRETS.items()}, **BLOCK_SECRETS}


def forms() -> list[str]:
    """Every planting text of :data:`SECRETS`, in order."""
    return [form for _, form in SECRETS.values()]


def name_forms() -> list[str]:
    """The planting texts that can be a file name (no slash), shortened to fit."""
    return [f for f in forms() if "/" not in f and len(f.encode()) < 200]


def pickle_calls(args: list[str]) -> bytes:
    """Protocol-2 pickle bytes calling ``os.system(arg)`` for each arg (written opcode by opcode, never loaded)."""
    out = bytearray(b"\x80\x02")
    for arg in args:
        data = arg.encode("utf-8")
        out += b"cos\nsystem\n" + b"X" + struct.pack("<I", len(data)) + data + b"\x85R0"
    return bytes(out + b"N.")


def _model(folder: Path, config: dict, *, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    save_file({"classifier.weight": rng.normal(0, 0.1, (4, 4)).astype(np.float32)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_case(root: Path) -> Path:
    """Write the case under ``root`` and return it."""
    every = forms()
    root.mkdir(parents=True)
    joined = " ".join(every)
    (root / "case.yaml").write_text(
        "\n".join([
            'incident_id: "INC-2026-0777"',
            f"title: {json.dumps('Leak drill ' + joined)}",
            'severity: "high"',
            f"commander: {json.dumps('Ana ' + joined)}",
            'affected_models: ["m"]',
            'detection_time: "2026-11-19T08:40:03Z"',
            f"detection_method: {json.dumps('monitor ' + joined)}",
            'suspect_model: "models/suspect/m"',
            'reference_model: "models/reference/m"',
        ]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    # a log line per secret, a service-account key (JSON with \n escapes) and a PEM block
    log = [f"2026-11-19T08:{i // 60:02d}:{i % 60:02d}Z step {i}: export {form}" for i, form in enumerate(every)]
    sa = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\n" + PEM_BODY[1] +
          "\n-----END PRIVATE KEY-----\n"}  # fmt: skip
    log += [f"2026-11-19T09:00:00Z sa.json {json.dumps(sa)}", "2026-11-19T09:00:01Z -----BEGIN RSA PRIVATE KEY-----",
            f"2026-11-19T09:00:02Z {PEM_BODY[0]}", "2026-11-19T09:00:03Z -----END RSA PRIVATE KEY-----"]  # fmt: skip
    (root / "logs").mkdir()
    (root / "logs" / "pipeline.log").write_text("\n".join(log) + "\n", encoding="utf-8")
    # file names
    (root / "exports").mkdir()
    for i, form in enumerate(name_forms()):
        (root / "exports" / f"{form}.txt").write_text(f"export number {i}\n", encoding="utf-8")
    # models: the suspect's config carries every form, its pickle calls os.system with each
    reference = {"model_type": "bert", "hidden_size": 4}
    pem = f"-----BEGIN EC PRIVATE KEY-----\n{PEM_BODY[0]}\n-----END EC PRIVATE KEY-----"
    suspect = {**reference, **{f"x_{k}": form for k, (_, form) in SECRETS.items()}, "service_account": sa, "pem": pem}
    _model(root / "models" / "reference" / "m", reference, seed=1)
    _model(root / "models" / "suspect" / "m", suspect, seed=2)
    (root / "models" / "suspect" / "m" / "optimizer.pkl").write_bytes(pickle_calls([f"curl -s {f}" for f in every]))
    (root / "payload.pkl").write_bytes(pickle_calls(every))  # at the case root too
    # predictions whose labels are the forms (a drift of them), and a baseline that lacks them
    (root / "predictions").mkdir()
    rows = []
    for i in range(400):
        label = "positive" if i % 2 else "negative"
        if i >= 200 and i % 3 == 0:
            label = every[(i // 3) % len(every)]
        rows.append(json.dumps({"timestamp": f"2026-11-{10 + i // 50:02d}T{i % 24:02d}:00:00Z", "request_id": f"r{i}",
                                "label": label, "confidence": 0.9, "model_version": "m"}))  # fmt: skip
    (root / "predictions" / "predictions.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "predictions" / "baseline_distribution.json").write_text('{"positive": 0.5, "negative": 0.5}')
    # monitor alerts
    (root / "monitor").mkdir()
    alerts = [{"timestamp": "2026-11-19T08:40:03Z", "type": "UNEXPECTED_FILE", "model": "m", "file": form,
               "severity": "high", "message": f"Unexpected file '{form}' in model directory",
               "expected_hash": None, "actual_hash": None} for form in every]  # fmt: skip
    (root / "monitor" / "alerts.jsonl").write_text("\n".join(json.dumps(a) for a in alerts) + "\n", encoding="utf-8")
    # processes and network
    header = "USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"
    procs = [header] + [f"mlsvc {100 + i:>9}  0.0  0.1  61480 52312 ?        S    Nov14   0:41 /usr/bin/python3 "
                        f"train.py --token {form}" for i, form in enumerate(every)]  # fmt: skip
    (root / "processes.txt").write_text("\n".join(procs) + "\n", encoding="utf-8")
    net = ["Netid State     Recv-Q Send-Q       Local Address:Port Peer Address:Port        Process"]
    net += [f'tcp   ESTAB     0      0               10.42.3.17:{40000 + i} 203.0.113.7:443          '
            f'users:(("{form}",pid={100 + i},fd=4))' for i, form in enumerate(name_forms())]  # fmt: skip
    (root / "network.txt").write_text("\n".join(net) + "\n", encoding="utf-8")
    # dependencies installed from URLs with credentials
    wheel = "pypi.acme.internal/packages/acme_feast-1.0-py3-none-any.whl"
    deps = ["numpy==1.26.4", f"--extra-index-url https://ci:{SECRETS['github'][0]}@pypi.acme.internal/simple",
            f"acme-feast @ https://deploy:{SECRETS['postgres-url'][0]}@{wheel}",
            f"acme-models @ git+https://oauth2:{SECRETS['gitlab'][0]}@gitlab.acme.internal/ml/models.git@v1.2",
            ]  # fmt: skip
    (root / "frozen_deps.txt").write_text("\n".join(deps) + "\n", encoding="utf-8")
    return root


def leaks(text: str) -> list[str]:
    """Kinds whose secret (or any piece of it longer than a third of it, at least 8 characters) is in ``text``."""
    import html

    texts = (text, html.unescape(text))
    found = []
    for kind, secret in ALL_SECRETS.items():
        width = max(8, len(secret) // 3 + 1)
        pieces = {secret[i : i + width] for i in range(len(secret) - width + 1)}
        if any(p in t for t in texts for p in pieces):
            found.append(kind)
    return found
