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

Findings are bounded (:mod:`workbench.grouping`): processes running one command line as one user for the same rules
are one ``suspicious_process`` finding, sockets of one program to one peer for the same reason one
``suspicious_connection`` finding (:mod:`workbench.host_network`), each with ``count``, first and last ``line``,
``pid`` (the first), ``pids`` (distinct pids) and up to three ``examples``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from workbench.analysis import AnalysisContext, AnalysisResult
from workbench.data.host_rules import HostRules, ProcessRule, default_host_rules, load_host_rules
from workbench.errors import EvidenceError, MalformedEvidence
from workbench.evidence.base import LoadContext, iter_lines
from workbench.grouping import Group, Observation, group_finding, group_observations, listing
from workbench.host_network import CONNECTION_COLUMNS, DETECTOR, allowlist, attack_note, connection_findings, owners
from workbench.records import Finding, Severity

__all__ = ["HostRules", "ProcessRule", "analyse_host", "load_host_rules", "program_of", "render_host"]

_TREE = re.compile(r"^(?:\|\s*)*\\_\s+")
_PY_ARG_OPTS = {"-W", "-X", "-Q"}
_PROC_COLUMNS = ["severity", "file", "line", "pid", "user", "tty", "command", "why", "attack"]
_INFERRED = "ps aux records no parent PID: shells spawned by the model server are inferred from user and terminal"


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
            who = owners(row.process)
            if row.state == "LISTEN" and any(rules.interpreters.fullmatch(n.lower()) for n, _ in who):
                servers.update(p for _, p in who)
            servers.update(p for n, p in who if n.lower() in rules.model_servers)
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
    allow = allowlist(allow_entries, "case.yaml", result.warnings)
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
            observations = []
            for row in frame.itertuples(index=False):
                pid = int(row.pid)
                if pid in flagged:
                    observations.append(_process_observation(proc.path, row, flagged[pid]))
                    proc_rows.append(_process_row(proc.path, row, flagged[pid]))
                if pid in servers:
                    server_rows.append({"file": proc.path, "pid": pid, "user": row.user, "command": row.command})
            result.findings += [_process_finding(g, parents) for g in group_observations(observations)]
        for net in nets:
            findings, rows = connection_findings(net.path, net.frame, rules, servers, flagged, allow)
            result.findings += findings
            conn_rows += rows
    result.data = {
        "processes": pd.DataFrame(proc_rows, columns=_PROC_COLUMNS),
        "connections": pd.DataFrame(conn_rows, columns=CONNECTION_COLUMNS),
        "servers": pd.DataFrame(server_rows, columns=["file", "pid", "user", "command"]),
        "tree": tree,
        "allowlist": [str(n) for n in allow],
    }
    result.summary = _summary(ctx, result)
    result.inputs = [x.path for x in (*ctx.evidence.all("processes"), *ctx.evidence.all("network"))]
    if not result.inputs:
        result.not_applicable = "no process list (ps) and no network capture (ss) in the case"
    return result


def _param_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _process_observation(path: str, row: Any, flag: _Flag) -> Observation:
    """A flagged process, keyed by (file, rules, user, command line): one command run by many processes groups."""
    key = (path, tuple(flag.rule_ids), str(row.user), _TREE.sub("", str(row.command)))
    return Observation(key, flag.severity, int(row.line), None, f"pid {row.pid}", str(row.pid), (row, flag))


def _process_finding(group: Group, parents: dict[int, int] | None) -> Finding:
    row, flag = group.first.item
    cmd, pids = str(row.command), list(group.names)
    detail = "; ".join(flag.reasons) + f". Command line: {cmd[:500]}." + attack_note(flag.attack)
    title = f"Suspicious process {row.pid} ({row.user}): {flag.worst.split(' (')[0]}"
    if group.count > 1:
        title = f"{group.count:,} suspicious processes ({row.user}): {flag.worst.split(' (')[0]}"
        detail += (f" {group.count:,} processes run this command line as {row.user} (ps {group.span()}), pids "
                   f"{listing(pids)}; the reasons above are the first one's.")  # fmt: skip
    evidence = {"path": group.key[0], "pid": int(row.pid), "pids": len(pids), "user": str(row.user),  # type: ignore[index]
                "tty": str(row.tty), "command": cmd[:500], "rules": ", ".join(flag.rule_ids),
                "attack": ", ".join(sorted(flag.attack))}  # fmt: skip
    if parents is not None and int(row.pid) in parents:
        evidence["parent_pid"] = parents[int(row.pid)]
    return group_finding(group, category="suspicious_process", detector=DETECTOR, atlas=sorted(flag.atlas),
                         title=title, detail=detail, evidence=evidence)  # fmt: skip


def _process_row(path: str, row: Any, flag: _Flag) -> dict[str, Any]:
    return {"severity": flag.severity.value, "file": path, "line": int(row.line), "pid": int(row.pid),
            "user": row.user, "tty": row.tty, "command": row.command, "why": "; ".join(flag.reasons),
            "attack": ", ".join(sorted(flag.attack))}  # fmt: skip


def _summary(ctx: AnalysisContext, result: AnalysisResult) -> str:
    if not ctx.evidence.all("processes") and not ctx.evidence.all("network"):
        return "No process list (ps aux) or socket list (ss -tunap) in the case."
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for f in result.findings:  # processes and sockets, not findings: one finding may stand for thousands
        counts[f.category][f.severity.value] += int(f.evidence.get("count", 1))
    if not counts:
        return "No suspicious process or connection in the captured host state."
    parts = []
    for cat, label in (("suspicious_process", "suspicious process(es)"), ("suspicious_connection", "connection(s)")):
        if counts[cat]:
            by = ", ".join(f"{n:,} {s}" for s in (v.value for v in Severity) if (n := counts[cat].get(s)))
            parts.append(f"{sum(counts[cat].values()):,} {label} ({by})")
    return "Host state: " + " and ".join(parts) + "."


def render_host(result: AnalysisResult) -> list[Any]:
    """HTML (escaped tables) for the "Host state" section: flagged processes, flagged sockets, model servers."""
    from html import escape

    from workbench.htmlkit import html_table

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
