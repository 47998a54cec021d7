"""Host state: suspicious processes (``processes.txt``, ps aux) and connections (``network.txt``, ss -tunap).

Processes are judged by their command line against the rules in ``data/suspicious_processes.yaml`` (download piped
into a shell, reverse shells, netcat, interpreters running from ``/tmp`` or ``/dev/shm``, miners) and by context:
``ps aux`` records no parent PID, so a shell "spawned by the model server" is recognised from the process tree when
the capture has one (``ps auxf`` draws it with ``\\_``), and otherwise inferred from a bare shell without a terminal
running as the model server's user; findings say which. Model-serving processes are those whose program is a known
server (gunicorn, uvicorn, vllm...) and interpreters that own a listening socket.

Connections are reported when a connected socket of the model server or of a suspicious process reaches an address
outside the internal ranges and the case's ``network_allowlist`` (``case.yaml``, addresses or CIDR ranges), when a
shell or netcat owns a socket, and when any process talks to or listens on a port favoured by backdoors. Nothing is
resolved or contacted: ss output is numeric and is read as text.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import pandas as pd

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.data.host_rules import HostRules, ProcessRule, default_host_rules, load_host_rules
from workbench.errors import EvidenceError, MalformedEvidence
from workbench.evidence.base import LoadContext, iter_lines
from workbench.records import EvidenceWarning, Finding, Severity

__all__ = ["HostRules", "ProcessRule", "analyse_host", "load_host_rules", "program_of", "render_host"]
_RS, _EXFIL = ("AML.T0072",), ("AML.T0025",)

DETECTOR = "workbench.host"
_TREE = re.compile(r"^(?:\|\s*)*\\_\s+")
_SS_OWNER = re.compile(r'\("(?P<name>(?:[^"\\]|\\.)*)",pid=(?P<pid>\d+),fd=\d+\)')
_NETCAT = re.compile(r"(?:nc|ncat|netcat|socat)(?:\.\w+)?")
_PY_ARG_OPTS = {"-W", "-X", "-Q"}
_PROC_COLUMNS = ["severity", "file", "line", "pid", "user", "tty", "command", "why", "attack"]
_INFERRED = "ps aux records no parent PID: shells spawned by the model server are inferred from user and terminal"
_CONN_COLUMNS = ["severity", "file", "line", "pid", "process", "local", "peer", "state", "why"]


# ------------------------------------------------------------------------------------------------- processes
def program_of(command: str, interpreters: re.Pattern[str] | None = None) -> tuple[str, str | None]:
    """``(program, argument)`` of a command line: the executable's base name, and for an interpreter the script
    path or ``-m`` module (``"module:NAME"``); setproctitle names (``nginx: worker process``) keep their first word.
    """
    interpreters = interpreters or default_host_rules().interpreters
    tokens = command.split()
    if not tokens:
        return "", None
    if tokens[0].startswith("["):  # kernel thread: [kworker/0:1H-kblockd]
        return command.strip().strip("[]").split("/", 1)[0].lower(), None
    base = PurePosixPath(tokens[0]).name.rstrip(":").lstrip("-").lower()
    if not interpreters.fullmatch(base):
        return base, None
    rest = iter(tokens[1:])
    for tok in rest:
        if tok == "-m":
            return base, "module:" + next(rest, "")
        if tok == "-c":
            return base, None
        if tok in _PY_ARG_OPTS:
            next(rest, None)
        elif not tok.startswith("-"):
            return base, tok
    return base, None


def _is_server(command: str, rules: HostRules) -> bool:
    base, arg = program_of(command, rules.interpreters)
    if base in rules.model_servers:
        return True
    if arg and arg.startswith("module:"):
        return arg[7:].startswith(rules.model_server_modules)
    return bool(arg) and PurePosixPath(arg).name.lower() in rules.model_servers


def _tree_parents(ctx: AnalysisContext, relpath: str, frame: pd.DataFrame) -> dict[int, int] | None:
    """pid -> parent pid from the ``\\_`` drawing of ``ps auxf``; None when the capture has no tree."""
    if not frame["command"].fillna("").str.match(r"^(?:\|\s*)*\\_\s").any():
        return None
    raw: dict[int, str] = {}
    wanted = set(frame["line"].astype(int))
    try:
        for number, text in iter_lines(ctx.case.path(relpath), LoadContext(relpath), []):
            if number in wanted:
                raw[number] = text
    except (EvidenceError, MalformedEvidence):
        return None
    parents: dict[int, int] = {}
    stack: list[tuple[int, int]] = []  # (column of the tree mark, pid)
    for row in frame.itertuples(index=False):
        text, cmd = raw.get(int(row.line), ""), str(row.command)
        mark = cmd.find("\\_") if _TREE.match(cmd) else -1
        col = len(text) - len(cmd) + mark if mark >= 0 and text.endswith(cmd) else -1
        while stack and stack[-1][0] >= col:
            stack.pop()
        if stack and col >= 0:
            parents[int(row.pid)] = stack[-1][1]
        stack.append((col, int(row.pid)))
    return parents or None


def _server_ancestor(pid: int, parents: dict[int, int] | None, servers: set[int]) -> int | None:
    """The nearest model-server ancestor of a process in the ps tree (at most 16 levels up), or None."""
    seen = 0
    while parents and pid in parents and seen < 16:
        pid, seen = parents[pid], seen + 1
        if pid in servers:
            return pid
    return None


@dataclass(slots=True)
class _Flag:
    """Why one process is suspicious: (severity, rule id, reason) hits, and the techniques they map to."""

    hits: list[tuple[Severity, str, str]]
    atlas: set[str]
    attack: set[str]

    def add(self, rid: str, reason: str, severity: Severity, atlas: tuple[str, ...], attack: tuple[str, ...]) -> None:
        self.hits.append((severity, rid, reason))
        self.atlas.update(atlas)
        self.attack.update(attack)

    @property
    def severity(self) -> Severity:
        return max((h[0] for h in self.hits), key=lambda s: s.rank)

    @property
    def worst(self) -> str:
        """Reason of the most severe hit (first among equals)."""
        return max(self.hits, key=lambda h: h[0].rank)[2]

    @property
    def reasons(self) -> list[str]:
        return [h[2] for h in self.hits]

    @property
    def rule_ids(self) -> list[str]:
        return [h[1] for h in self.hits]


def _classify(frame: pd.DataFrame, rules: HostRules, servers: set[int], parents: dict[int, int] | None):
    """pid -> _Flag for every suspicious process of one ps capture."""
    users = {str(r.user) for r in frame.itertuples(index=False) if int(r.pid) in servers}
    flags: dict[int, _Flag] = {}
    for row in frame.itertuples(index=False):
        pid, cmd = int(row.pid), _TREE.sub("", str(row.command or ""))
        flag = _Flag([], set(), set())
        for rule in rules.rules:
            if rule.pattern.search(cmd):
                flag.add(rule.id, rule.title, rule.severity, rule.atlas, rule.attack)
        base, _ = program_of(cmd, rules.interpreters)
        tokens = cmd.split()[1:]
        ancestor = _server_ancestor(pid, parents, servers) if pid not in servers else None
        if rules.shells.fullmatch(base) and pid not in servers:
            if ancestor is not None:
                flag.add("shell_from_model_server", f"Shell spawned by the model server (pid {ancestor}, from the "
                         "ps process tree)", Severity.HIGH, ("AML.T0050",), ("T1059.004",))  # fmt: skip
            elif parents is None and row.tty == "?" and str(row.user) in users and set(tokens) <= {"-i", "-l", "-"}:
                flag.add("shell_as_server_user", f"Shell without a terminal running as the model server's user "
                         f"{row.user} (ps aux has no parent PID: inferred from the user and the missing terminal, "
                         "not from the process tree)", Severity.HIGH, ("AML.T0050",), ("T1059.004",))  # fmt: skip
        if flag.hits and ancestor is not None and "shell_from_model_server" not in flag.rule_ids:
            flag.add("descends_from_model_server", f"Descends from the model server (pid {ancestor}, from the ps "
                     "process tree)", Severity.MEDIUM, (), ())  # fmt: skip
        if flag.hits:
            flags[pid] = flag
    return flags


# ------------------------------------------------------------------------------------------------- network
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(str(text).strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _allowlist(entries: list[Any], source: str, warnings: list[EvidenceWarning]):
    nets = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            reason = f"network_allowlist entry {str(entry)[:80]!r} is not an address or CIDR range (never resolved)"
            warnings.append(EvidenceWarning(source, None, reason + ", ignored"))
    return nets


def _owners(process: Any) -> list[tuple[str, int]]:
    return [(m["name"], int(m["pid"])) for m in _SS_OWNER.finditer(str(process or ""))]


class _Verdict(NamedTuple):
    why: str
    severity: Severity
    atlas: tuple[str, ...]
    label: str


def _judge_socket(row: Any, owners: list[tuple[str, int]], ctx: dict[str, Any]) -> _Verdict | None:
    """Why one ss row is suspicious, or None."""
    rules: HostRules = ctx["rules"]
    name, pid = owners[0]
    shellish = any(rules.shells.fullmatch(n.lower()) or _NETCAT.fullmatch(n.lower()) for n, _ in owners)
    lport = int(row.local_port) if pd.notna(row.local_port) else None
    pport = int(row.peer_port) if pd.notna(row.peer_port) else None
    if row.state in ("LISTEN", "UNCONN"):
        if shellish:
            return _Verdict(f"{name} listens on port {lport}", Severity.CRITICAL, _RS, "bind shell")
        if lport in rules.backdoor_ports and not ctx["servers"] & {p for _, p in owners}:
            return _Verdict(f"listening on port {lport}, favoured by backdoors", Severity.HIGH, _RS, "backdoor port")
        if pid in ctx["flagged"]:
            return _Verdict(f"the suspicious process listens on port {lport}", Severity.HIGH, _RS, "listener")
        return None
    peer = _ip(row.peer_addr)
    if row.state not in rules.connected_states or peer is None:
        return None
    target = f"{row.peer_addr}:{pport}"
    if shellish:
        return _Verdict(f"a {name} process owns a connection to {target}", Severity.CRITICAL, _RS, "reverse shell")
    internal = any(peer in n for n in rules.internal) or any(peer in n for n in ctx["allow"])
    if internal or lport in ctx["listen_ports"]:  # internal, allowlisted or inbound
        return None
    bad_port = pport in rules.backdoor_ports
    actor = "model server" if pid in ctx["servers"] else "suspicious process" if pid in ctx["flagged"] else None
    if actor:
        why = f"the {actor} connected to {target}, outside the internal ranges and the allowlist"
        if bad_port:
            return _Verdict(why + f" on port {pport}, favoured by reverse shells and C2", Severity.CRITICAL,
                            (*_RS, *_EXFIL), f"{actor} to a backdoor port")  # fmt: skip
        return _Verdict(why, Severity.HIGH, _EXFIL, f"{actor} connected outside the allowlist")
    if bad_port:
        return _Verdict(f"connection to {target}, a port favoured by reverse shells and C2", Severity.HIGH, _RS,
                        "backdoor port")  # fmt: skip
    if pport not in rules.common_ports:
        return _Verdict(f"connection to {target} on an unusual port", Severity.LOW, _EXFIL, "unusual port")
    return None


def _socket_findings(frame: pd.DataFrame, rules: HostRules, servers: set[int], flagged: dict, allow: list) -> list:
    """Suspicious sockets of one ss capture, grouped by (pid, peer) or listening port, as dicts."""
    listen = frame[frame["state"].isin(["LISTEN", "UNCONN"])]["local_port"].dropna()
    ctx = {"rules": rules, "servers": servers, "flagged": flagged, "allow": allow,
           "listen_ports": {int(p) for p in listen}}  # fmt: skip
    grouped: dict[tuple, dict] = {}
    for row in frame.itertuples(index=False):
        owners = _owners(row.process) or ([(str(row.process_name), int(row.pid))] if pd.notna(row.pid) else [])
        verdict = _judge_socket(row, owners, ctx) if owners else None
        if verdict is None:
            continue
        why, sev, atlas, label = verdict
        name, pid = owners[0]
        lport = "*" if pd.isna(row.local_port) else int(row.local_port)
        pport = "*" if pd.isna(row.peer_port) else int(row.peer_port)
        listening = row.state in ("LISTEN", "UNCONN")
        key = (pid, name, "listen", lport) if listening else (pid, name, row.peer_addr, pport)
        item = grouped.setdefault(key, {
            "severity": sev, "pid": pid, "process": name, "local": f"{row.local_addr}:{lport}",
            "peer": f"{row.peer_addr}:{pport}", "states": [], "lines": [], "why": why, "atlas": atlas, "label": label,
            "netid": row.netid if isinstance(row.netid, str) else None})  # fmt: skip
        item["states"].append(str(row.state))
        item["lines"].append(int(row.line))
    return list(grouped.values())


# ------------------------------------------------------------------------------------------------- analysis
def _pairs(ctx: AnalysisContext) -> list[tuple[Any, list[Any]]]:
    """Each process capture with the socket captures that belong to it (same folder, or the only capture of its
    kind); socket captures without a process capture come last with ``None``."""
    procs, nets = ctx.evidence.all("processes"), ctx.evidence.all("network")
    folder = lambda loaded: str(PurePosixPath(loaded.path).parent)  # noqa: E731
    pairs: list[tuple[Any, list[Any]]] = [(p, []) for p in procs]
    orphans = []
    for net in nets:
        same = [i for i, p in enumerate(procs) if folder(p) == folder(net)]
        index = same[0] if same else 0 if len(procs) == 1 else None
        if index is None:
            orphans.append(net)
        else:
            pairs[index][1].append(net)
    return pairs + [(None, [n]) for n in orphans]


def _servers(frame: pd.DataFrame | None, nets: list[Any], rules: HostRules) -> set[int]:
    """PIDs of model-serving processes: known server programs (ps or ss) and interpreters owning a listening socket."""
    servers: set[int] = set()
    if frame is not None:
        servers = {
            int(r.pid) for r in frame.itertuples(index=False) if _is_server(_TREE.sub("", str(r.command)), rules)
        }
    for net in nets:
        for row in net.frame.itertuples(index=False):
            owners = _owners(row.process)
            if row.state == "LISTEN" and any(rules.interpreters.fullmatch(n.lower()) for n, _ in owners):
                servers.update(p for _, p in owners)
            servers.update(p for n, p in owners if n.lower() in rules.model_servers)
    return servers


def analyse_host(ctx: AnalysisContext, rules: HostRules | None = None) -> AnalysisResult:
    """Suspicious processes and connections of the case's ``processes.txt`` and ``network.txt``.

    Reads the loaded ``processes`` and ``network`` evidence (and, for a ``ps auxf`` tree, the process file's raw
    lines), ``case.yaml``'s ``network_allowlist`` and the parameters ``network_allowlist`` (list or comma-separated
    text) and ``model_servers`` (extra program names).

    Returns:
        Section ``host``: ``suspicious_process`` and ``suspicious_connection`` findings; ``data`` holds the frames
        ``processes`` (flagged processes), ``connections`` (flagged sockets) and ``servers`` (model-serving
        processes), ``tree`` (whether a process tree was available) and ``allowlist`` (the ranges applied).
    """
    rules = rules or default_host_rules()
    result = AnalysisResult(section="host")
    allow_entries = list(ctx.case.meta.network_allowlist) + _param_list(ctx.parameters.get("network_allowlist"))
    allow = _allowlist(allow_entries, "case.yaml", result.warnings)
    if extra := {s.lower() for s in _param_list(ctx.parameters.get("model_servers"))}:
        rules = replace(rules, model_servers=rules.model_servers | extra)
    proc_rows: list[dict] = []
    conn_rows: list[dict] = []
    server_rows: list[dict] = []
    tree = False
    for proc, nets in _pairs(ctx):
        frame = proc.frame if proc is not None else None
        servers = _servers(frame, nets, rules)
        flagged: dict[int, _Flag] = {}
        if frame is not None:
            parents = _tree_parents(ctx, proc.path, frame)
            tree = tree or parents is not None
            flagged = _classify(frame, rules, servers, parents)
            for row in frame.itertuples(index=False):
                pid = int(row.pid)
                if pid in flagged:
                    result.findings.append(_process_finding(proc.path, row, flagged[pid], parents))
                    proc_rows.append(_process_row(proc.path, row, flagged[pid]))
                if pid in servers:
                    server_rows.append({"file": proc.path, "pid": pid, "user": row.user, "command": row.command})
        for net in nets:
            for item in _socket_findings(net.frame, rules, servers, flagged, allow):
                result.findings.append(_connection_finding(net.path, item))
                conn_rows.append({"severity": item["severity"].value, "file": net.path, "line": item["lines"][0],
                                  "pid": item["pid"], "process": item["process"], "local": item["local"],
                                  "peer": item["peer"], "state": ", ".join(sorted(set(item["states"]))),
                                  "why": item["why"]})  # fmt: skip
    result.data = {
        "processes": pd.DataFrame(proc_rows, columns=_PROC_COLUMNS),
        "connections": pd.DataFrame(conn_rows, columns=_CONN_COLUMNS),
        "servers": pd.DataFrame(server_rows, columns=["file", "pid", "user", "command"]),
        "tree": tree,
        "allowlist": [str(n) for n in allow],
    }
    result.summary = _summary(ctx, result)
    return result


def _param_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _attack_note(attack: set[str]) -> str:
    return f" ATT&CK: {', '.join(sorted(attack))}." if attack else ""


def _process_finding(path: str, row: Any, flag: _Flag, parents: dict[int, int] | None) -> Finding:
    cmd = str(row.command)
    detail = "; ".join(flag.reasons) + f". Command line: {cmd[:500]}." + _attack_note(flag.attack)
    evidence = {"path": path, "line": int(row.line), "pid": int(row.pid), "user": str(row.user), "tty": str(row.tty),
                "command": cmd[:500], "rules": ", ".join(flag.rule_ids),
                "attack": ", ".join(sorted(flag.attack))}  # fmt: skip
    if parents is not None and int(row.pid) in parents:
        evidence["parent_pid"] = parents[int(row.pid)]
    return Finding.create(
        severity=flag.severity, category="suspicious_process", detector=DETECTOR, atlas=sorted(flag.atlas),
        title=f"Suspicious process {row.pid} ({row.user}): {flag.worst.split(' (')[0]}",
        detail=detail, evidence=evidence,
    )  # fmt: skip


def _process_row(path: str, row: Any, flag: _Flag) -> dict[str, Any]:
    return {"severity": flag.severity.value, "file": path, "line": int(row.line), "pid": int(row.pid),
            "user": row.user, "tty": row.tty, "command": row.command, "why": "; ".join(flag.reasons),
            "attack": ", ".join(sorted(flag.attack))}  # fmt: skip


def _connection_finding(path: str, item: dict[str, Any]) -> Finding:
    attack = {"T1095"} if "shell" in item["label"] else {"T1071", "T1041"}
    if "backdoor" in item["label"]:
        attack.add("T1571")
    states = ", ".join(sorted(set(item["states"])))
    lines = ", ".join(map(str, item["lines"]))
    return Finding.create(
        severity=item["severity"], category="suspicious_connection", detector=DETECTOR, atlas=item["atlas"],
        title=f"{item['process']} (pid {item['pid']}) {item['local']} -> {item['peer']}: {item['label']}",
        detail=f"{item['why'][0].upper()}{item['why'][1:]}. Socket state {states} (ss lines {lines})."
               + _attack_note(attack),
        evidence={"path": path, "line": item["lines"][0], "pid": item["pid"], "process": item["process"],
                  "local": item["local"], "peer": item["peer"], "state": states, "netid": item["netid"],
                  "attack": ", ".join(sorted(attack))},
    )  # fmt: skip


def _summary(ctx: AnalysisContext, result: AnalysisResult) -> str:
    if not ctx.evidence.all("processes") and not ctx.evidence.all("network"):
        return "No process list (ps aux) or socket list (ss -tunap) in the case."
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for f in result.findings:
        counts[f.category][f.severity.value] += 1
    if not counts:
        return "No suspicious process or connection in the captured host state."
    parts = []
    for cat, label in (("suspicious_process", "suspicious process(es)"), ("suspicious_connection", "connection(s)")):
        if counts[cat]:
            by = ", ".join(f"{n} {s}" for s in (v.value for v in Severity) if (n := counts[cat].get(s)))
            parts.append(f"{sum(counts[cat].values())} {label} ({by})")
    return "Host state: " + " and ".join(parts) + "."


def render_host(result: AnalysisResult) -> list[Any]:
    """HTML (escaped tables) for the "Host state" section: flagged processes, flagged sockets, model servers."""
    from html import escape

    from workbench.report.present import html_table

    data = result.data
    how = "parents from the ps process tree" if data.get("tree") else _INFERRED
    out = [f"<p>{escape(result.summary)} <span class='wb-note'>({escape(how)})</span></p>"]
    if data.get("allowlist"):
        out.append(f"<p>Network allowlist: <span class='wb-mono'>{escape(', '.join(data['allowlist']))}</span></p>")
    for title, key, mono in (("Suspicious processes", "processes", ("command",)),
                             ("Suspicious connections", "connections", ("local", "peer")),
                             ("Model-serving processes", "servers", ("command",))):  # fmt: skip
        frame = data.get(key)
        if isinstance(frame, pd.DataFrame):
            out.append(f"<h4>{escape(title)}</h4>" + html_table(frame, mono=mono))
    return out
