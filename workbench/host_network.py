"""Sockets of an ss capture (``network.txt``, ss -tunap), for :mod:`workbench.host`: which are suspicious, as bounded
findings.

A socket is judged by its owner and its peer (see :mod:`workbench.host`). Suspicious sockets of one capture are
grouped by what makes them the same: (verdict, owning program, peer address and port) for connected sockets,
(verdict, program, local port) for listeners. Thousands of connections of one program to one peer are one
``suspicious_connection`` finding with the :mod:`workbench.grouping` fields (``count`` sockets, first and last ss
``line``, up to three examples of pid, local address and state), ``pid`` (the first), ``pids`` (distinct pids),
``local`` (the first), ``peer``, ``state`` (every state seen), ``process``, ``netid`` and ``attack``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, NamedTuple

import pandas as pd

from workbench.data.host_rules import HostRules
from workbench.grouping import Group, Observation, group_finding, group_observations, listing
from workbench.records import EvidenceWarning, Finding, Severity

__all__ = ["CONNECTION_COLUMNS", "DETECTOR", "allowlist", "attack_note", "connection_findings", "owners"]

DETECTOR = "workbench.host"
#: Columns of the section's ``connections`` frame: one row per finding.
CONNECTION_COLUMNS = ["severity", "file", "line", "count", "pid", "process", "local", "peer", "state", "why"]
_RS, _EXFIL = ("AML.T0072",), ("AML.T0025",)
_SS_OWNER = re.compile(r'\("(?P<name>(?:[^"\\]|\\.)*)",pid=(?P<pid>\d+),fd=\d+\)')
_NETCAT = re.compile(r"(?:nc|ncat|netcat|socat)(?:\.\w+)?")


def attack_note(attack: set[str]) -> str:
    """`` ATT&CK: T1, T2.`` for a detail, or nothing."""
    return f" ATT&CK: {', '.join(sorted(attack))}." if attack else ""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(str(text).strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def allowlist(entries: list[Any], source: str, warnings: list[EvidenceWarning]) -> list[Any]:
    """The ``network_allowlist`` entries as networks; an entry that is no address or range is a warning."""
    nets = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            reason = f"network_allowlist entry {str(entry)[:80]!r} is not an address or CIDR range (never resolved)"
            warnings.append(EvidenceWarning(source, None, reason + ", ignored"))
    return nets


def owners(process: Any) -> list[tuple[str, int]]:
    """``(name, pid)`` of every owner in an ss ``users:((...))`` field."""
    return [(m["name"], int(m["pid"])) for m in _SS_OWNER.finditer(str(process or ""))]


class _Verdict(NamedTuple):
    why: str
    severity: Severity
    atlas: tuple[str, ...]
    label: str


def _judge_socket(row: Any, who: list[tuple[str, int]], ctx: dict[str, Any]) -> _Verdict | None:
    """Why one ss row is suspicious, or None."""
    rules: HostRules = ctx["rules"]
    name, pid = who[0]
    shellish = any(rules.shells.fullmatch(n.lower()) or _NETCAT.fullmatch(n.lower()) for n, _ in who)
    lport = int(row.local_port) if pd.notna(row.local_port) else None
    pport = int(row.peer_port) if pd.notna(row.peer_port) else None
    if row.state in ("LISTEN", "UNCONN"):
        if shellish:
            return _Verdict(f"{name} listens on port {lport}", Severity.CRITICAL, _RS, "bind shell")
        if lport in rules.backdoor_ports and not ctx["servers"] & {p for _, p in who}:
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


def _observations(path: str, frame: pd.DataFrame, rules: HostRules, servers: set[int], flagged: Any,
                  allow: list) -> list[Observation]:  # fmt: skip
    """One observation per suspicious socket of one ss capture, keyed by (file, verdict, program, peer or port)."""
    listen = frame[frame["state"].isin(["LISTEN", "UNCONN"])]["local_port"].dropna()
    ctx = {"rules": rules, "servers": servers, "flagged": flagged, "allow": allow,
           "listen_ports": {int(p) for p in listen}}  # fmt: skip
    found: list[Observation] = []
    for row in frame.itertuples(index=False):
        who = owners(row.process) or ([(str(row.process_name), int(row.pid))] if pd.notna(row.pid) else [])
        verdict = _judge_socket(row, who, ctx) if who else None
        if verdict is None:
            continue
        name, pid = who[0]
        lport = "*" if pd.isna(row.local_port) else int(row.local_port)
        pport = "*" if pd.isna(row.peer_port) else int(row.peer_port)
        listening = row.state in ("LISTEN", "UNCONN")
        key = (path, verdict.label, name, "listen", lport) if listening else (path, verdict.label, name,
                                                                               row.peer_addr, pport)  # fmt: skip
        local, state = f"{row.local_addr}:{lport}", str(row.state)
        item = {"verdict": verdict, "pid": pid, "process": name, "local": local, "peer": f"{row.peer_addr}:{pport}",
                "state": state, "netid": row.netid if isinstance(row.netid, str) else None}  # fmt: skip
        example = f"pid {pid} {local} {state}"
        found.append(Observation(key, verdict.severity, int(row.line), None, example, str(pid), item))
    return found


def _finding(group: Group, states: list[str]) -> Finding:
    first = group.first.item
    verdict: _Verdict = first["verdict"]
    attack = {"T1095"} if "shell" in verdict.label else {"T1071", "T1041"}
    if "backdoor" in verdict.label:
        attack.add("T1571")
    state = ", ".join(sorted(states))
    pids = list(group.names)
    if group.count == 1:
        title = f"{first['process']} (pid {first['pid']}) {first['local']} -> {first['peer']}: {verdict.label}"
        sockets = f"Socket state {state} (ss {group.span()})."
    else:
        who = f"pid {first['pid']}" if len(pids) == 1 else f"{len(pids):,} pids"
        title = f"{first['process']} ({who}) {group.count:,} sockets -> {first['peer']}: {verdict.label}"
        sockets = (f"{group.count:,} sockets, state {state} (ss {group.span()}), owned by pid(s) "
                   f"{listing(pids)}.")  # fmt: skip
    evidence = {"path": group.key[0], "pid": first["pid"], "pids": len(pids), "process": first["process"],  # type: ignore[index]
                "local": first["local"], "peer": first["peer"], "state": state, "netid": first["netid"],
                "attack": ", ".join(sorted(attack))}  # fmt: skip
    return group_finding(group, category="suspicious_connection", detector=DETECTOR, atlas=verdict.atlas,
                         title=title, detail=f"{verdict.why[0].upper()}{verdict.why[1:]}. {sockets}"
                         + attack_note(attack), evidence=evidence)  # fmt: skip


def connection_findings(path: str, frame: pd.DataFrame, rules: HostRules, servers: set[int], flagged: Any,
                        allow: list) -> tuple[list[Finding], list[dict[str, Any]]]:  # fmt: skip
    """Suspicious sockets of one ss capture (``network`` frame of ``path``) as grouped findings.

    Args:
        servers: pids of model-serving processes; flagged: pids of suspicious processes (anything with ``in``);
        allow: the allowlisted networks (:func:`allowlist`).

    Returns:
        ``(findings, rows)``: ``suspicious_connection`` findings in order of their first socket, and one row per
        finding for the section's ``connections`` frame (:data:`CONNECTION_COLUMNS`).
    """
    observations = _observations(path, frame, rules, servers, flagged, allow)
    states: dict[Any, dict[str, None]] = {}
    for obs in observations:
        states.setdefault(obs.key, {})[obs.item["state"]] = None
    findings, rows = [], []
    for group in group_observations(observations):
        finding = _finding(group, list(states[group.key]))
        findings.append(finding)
        ev = finding.evidence
        rows.append({"severity": finding.severity.value, "file": path, "line": ev["line"], "count": ev["count"],
                     "pid": ev["pid"], "process": ev["process"], "local": ev["local"], "peer": ev["peer"],
                     "state": ev["state"], "why": group.first.item["verdict"].why})  # fmt: skip
    return findings, rows
