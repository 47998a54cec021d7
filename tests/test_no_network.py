"""No network at run time: neither ``workbench investigate`` nor the Chromium that prints its PDF opens a connection.

Each process is run under ``strace -f -yy`` (every socket annotated with its protocol and addresses) and its
socket calls are read back: an inet ``connect()``, a datagram or stream write to any address but loopback, a
``bind()`` off loopback and a TCP ``listen()`` are each recorded with the process that made it. Chromium is traced
twice: with its offline flags alone (the fallback where no network namespace can be made) and in the namespace
(the default here, as root). The report printed is the one the traced ``investigate`` run wrote.

The one ``connect()`` the flags cannot remove is the network stack's IPv6 route probe: a UDP socket "connected"
to ``[2001:4860:4860::8888]:443`` so that the kernel picks a source address; nothing is ever sent on it (this is
asserted), and in the namespace there is no route and the probe is not even made.

Inside ``investigate`` one inet socket exists, on loopback: urllib3 binds ``[::1]:0`` once at import to learn
whether IPv6 works (closed at once, never listening). ipykernel's IOPub pipe for forked subprocesses, which binds
and listens on ``tcp://127.0.0.1``, is kept off by the kernel launcher (``workbench.report.kernel_launcher``):
nothing listens on TCP.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from workbench.report import pdf as pdf_mod

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "evidence-samples" / "tampered-weights"
STRACE = shutil.which("strace")
needs_strace = pytest.mark.skipif(STRACE is None, reason="strace is installed by .ci/run (make system-deps)")
needs_chromium = pytest.mark.skipif(
    pdf_mod.find_chromium() is None, reason="Chromium is installed by .ci/run (make system-deps)"
)
#: the IPv6 route probe of Chromium's network stack (UDP, nothing sent): the only connect() left by the flags
IPV6_ROUTE_PROBE = ("2001:4860:4860::8888", 443)
_TRACED = "socket,connect,bind,listen,sendto,sendmsg,sendmmsg,write,writev"

_CALL = re.compile(
    r"^(?P<pid>\d+) +(?P<call>\w+)\((?P<fd>\d+)<(?P<proto>TCP|TCPv6|UDP|UDPv6|UDPLITE|RAW)[^:]*:"
    r"\[(?P<sock>[^\]]*)\]>(?P<rest>.*)$"
)
_V4 = re.compile(r'sin_port=htons\((?P<port>\d+)\), sin_addr=inet_addr\("(?P<addr>[^"]+)"\)')
_V6 = re.compile(r'sin6_port=htons\((?P<port>\d+)\).*?inet_pton\(AF_INET6, "(?P<addr>[^"]+)"')
_PEER = re.compile(r"->\[?(?P<addr>[0-9a-fA-F.:]+?)\]?:(?P<port>\d+)$")


def _local(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    mapped = getattr(ip, "ipv4_mapped", None)
    ip = mapped or ip
    return ip.is_loopback or ip.is_unspecified


@dataclass
class SocketCalls:
    """What one traced run did with inet sockets (each entry: ``pid call proto address:port``)."""

    tcp_connects: list[str] = field(default_factory=list)
    udp_connects: list[tuple[str, int]] = field(default_factory=list)
    sends: list[str] = field(default_factory=list)
    binds: list[str] = field(default_factory=list)
    listens: list[str] = field(default_factory=list)
    lines: int = 0


def read_trace(path: Path) -> SocketCalls:
    """Parse an ``strace -f -yy`` log into the inet socket calls that matter (loopback ones left out, but listens)."""
    calls = SocketCalls()
    for line in path.read_text(errors="replace").splitlines():
        calls.lines += 1
        m = _CALL.match(line)
        if m is None:
            continue
        call, proto, rest = m["call"], m["proto"], m["rest"]
        where = _V4.search(rest) or _V6.search(rest)
        peer = _PEER.search(m["sock"])
        what = f"{m['pid']} {call} {proto} "
        if call == "connect" and where:
            if _local(where["addr"]):
                continue
            if proto.startswith("UDP"):
                calls.udp_connects.append((where["addr"], int(where["port"])))
            else:
                calls.tcp_connects.append(what + f"{where['addr']}:{where['port']}")
        elif call in ("sendto", "sendmsg", "sendmmsg", "write", "writev"):
            target = where or peer
            if target and not _local(target["addr"]):
                calls.sends.append(what + f"{target['addr']}:{target['port']}")
        elif call == "bind" and where and not _local(where["addr"]):
            calls.binds.append(what + f"{where['addr']}:{where['port']}")
        elif call == "listen":
            calls.listens.append(what + m["sock"])
    return calls


def traced(command: list[str], log: Path, **kwargs) -> subprocess.CompletedProcess:
    """Run ``command`` under strace (seccomp-filtered, so only the traced calls stop it), output to ``log``."""
    args = [STRACE, "--seccomp-bpf", "-f", "-qq", "-yy", "-e", f"trace={_TRACED}", "-e", "signal=none", "-o", str(log)]
    return subprocess.run([*args, *command], capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope="module")
def investigate_trace(tmp_path_factory) -> tuple[Path, SocketCalls]:
    """``workbench investigate`` on the tampered case, traced whole (CLI, kernel and every worker)."""
    base = tmp_path_factory.mktemp("no-network")
    log = base / "investigate.strace"
    proc = traced([sys.executable, "-m", "workbench", "investigate", str(CASE), "--out", str(base / "out")], log,
                  timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return base / "out" / "report.html", read_trace(log)


@needs_strace
def test_investigate_connects_nowhere_and_sends_nothing(investigate_trace):
    _, calls = investigate_trace
    assert calls.lines > 100  # the trace did see the run
    assert calls.tcp_connects == [] and calls.udp_connects == [], (calls.tcp_connects, calls.udp_connects)
    assert calls.sends == [] and calls.binds == [], (calls.sends, calls.binds)


@needs_strace
def test_nothing_listens_on_tcp_while_evidence_is_analysed(investigate_trace):
    _, calls = investigate_trace
    assert calls.listens == [], calls.listens


def _print_traced(html: Path, tmp_path: Path, *, isolate: bool, monkeypatch) -> SocketCalls:
    """Print ``html`` with the product's own :func:`html_to_pdf`, the whole Python process traced."""
    if not isolate:
        monkeypatch.setenv("WORKBENCH_CHROMIUM_NETNS", "0")
    pdf = tmp_path / "report.pdf"
    code = (
        "import sys; from pathlib import Path; from workbench.report.pdf import html_to_pdf, network_isolation;"
        f"html_to_pdf(Path(sys.argv[1]), Path(sys.argv[2]), isolate={isolate});"
        "print(network_isolation().note)"
    )
    log = tmp_path / "chromium.strace"
    proc = traced([sys.executable, "-c", code, str(html), str(pdf)], log, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert pdf.stat().st_size > 10_000
    return read_trace(log)


@needs_strace
@needs_chromium
def test_chromium_flags_alone_open_no_connection(investigate_trace, tmp_path, monkeypatch):
    html, _ = investigate_trace
    calls = _print_traced(html, tmp_path, isolate=False, monkeypatch=monkeypatch)
    assert calls.lines > 100
    assert calls.tcp_connects == [], calls.tcp_connects  # accounts.google.com, clients2, update.googleapis.com...
    assert calls.sends == [], calls.sends  # DNS queries included
    assert calls.binds == [] and calls.listens == [], (calls.binds, calls.listens)
    assert set(calls.udp_connects) <= {IPV6_ROUTE_PROBE}, calls.udp_connects


@needs_strace
@needs_chromium
@pytest.mark.skipif(not pdf_mod.network_isolation().namespaced, reason="this platform allows no network namespace")
def test_chromium_in_its_namespace_makes_no_attempt_at_all(investigate_trace, tmp_path, monkeypatch):
    html, _ = investigate_trace
    calls = _print_traced(html, tmp_path, isolate=True, monkeypatch=monkeypatch)
    assert calls.lines > 100
    assert (calls.tcp_connects, calls.udp_connects, calls.sends, calls.binds) == ([], [], [], [])


def test_trace_reader_sees_what_chromium_did_before_the_fix(tmp_path):
    """The reader on lines as strace wrote them for Chromium 156 with the old flags (DNS to Google, a TCP try)."""
    log = tmp_path / "old.strace"
    log.write_text(
        "12213 connect(23<UDPv6:[183553]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2001:4860:4860::8888", &sin6_addr), sin6_scope_id=0}, 28) = 0\n'
        "30549 connect(19<UDP:[0.0.0.0:27096]>, {sa_family=AF_INET, sin_port=htons(53), "
        'sin_addr=inet_addr("10.255.255.53")}, 16) = 0\n'
        '30549 sendto(19<UDP:[10.0.0.2:27096->10.255.255.53:53]>, "53\\1\\0\\0\\1\\0\\0\\0\\0\\0\\0\\10clients2", 37, '
        "0, NULL, 0) = 37\n"
        '30550 connect(31<TCP:[88]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("142.250.1.84")}, '
        "16 <unfinished ...>\n"
        '30551 connect(7<TCP:[90]>, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, '
        "16) = 0\n"
        "30551 bind(8<TCPv6:[91]>, {sa_family=AF_INET6, sin6_port=htons(0), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0\n'
        "30552 listen(30<TCP:[127.0.0.1:34471]>, 100) = 0\n"
        '30553 connect(5<UNIX:[1234]>, {sa_family=AF_UNIX, sun_path="/run/dbus/system_bus_socket"}, 29) = -1\n',
        encoding="utf-8",
    )
    calls = read_trace(log)
    assert calls.udp_connects == [IPV6_ROUTE_PROBE, ("10.255.255.53", 53)]
    assert calls.sends == ["30549 sendto UDP 10.255.255.53:53"]
    assert calls.tcp_connects == ["30550 connect TCP 142.250.1.84:443"]
    assert calls.binds == [] and calls.listens == ["30552 listen TCP 127.0.0.1:34471"]


# ------------------------------------------------------------------ the namespace and its fallback, no Chromium needed
def _fake_browser(tmp_path: Path, body: str) -> Path:
    """A stand-in for Chromium: a shell script that records its namespace and writes the ``--print-to-pdf`` file."""
    script = tmp_path / "fake-chromium"
    script.write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --print-to-pdf=*) out="${a#--print-to-pdf=}";; esac; done\n' + body,
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def fresh_isolation():
    pdf_mod.network_isolation.cache_clear()
    yield
    pdf_mod.network_isolation.cache_clear()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is missing")
def test_chromium_runs_in_a_namespace_without_interfaces(tmp_path, monkeypatch, fresh_isolation):
    if not pdf_mod.network_isolation().namespaced:
        pytest.skip(f"no network namespace here: {pdf_mod.network_isolation().note}")
    browser = _fake_browser(tmp_path, 'readlink /proc/self/ns/net > "$out"; cat /proc/net/dev >> "$out"\n')
    monkeypatch.setenv("WORKBENCH_CHROMIUM", str(browser))
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    out = pdf_mod.html_to_pdf(html, tmp_path / "r.pdf").read_text()
    inside = out.splitlines()[0]
    assert inside != str(Path("/proc/self/ns/net").readlink())  # another network namespace
    interfaces = [line.split(":")[0].strip() for line in out.splitlines()[3:]]
    assert interfaces == ["lo"], out  # and nothing in it but a loopback that is down


def test_without_a_namespace_the_flags_alone_are_used_and_a_warning_says_so(tmp_path, monkeypatch, caplog,
                                                                              fresh_isolation):  # fmt: skip
    browser = _fake_browser(tmp_path, 'printf "%s\\n" "$@" > "$out"\n')
    monkeypatch.setenv("WORKBENCH_CHROMIUM", str(browser))
    monkeypatch.setattr(pdf_mod.shutil, "which", lambda name: None)  # no unshare on this platform
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    with caplog.at_level(logging.WARNING, logger="workbench.report.pdf"):
        argv = pdf_mod.html_to_pdf(html, tmp_path / "r.pdf").read_text().splitlines()
    assert "without a network namespace" in caplog.text and "unshare" in caplog.text
    for flag in pdf_mod.OFFLINE_FLAGS:
        assert flag in argv
    assert "--host-resolver-rules=MAP * ~NOTFOUND" in argv and argv[-1] == html.resolve().as_uri()


def test_a_browser_that_hangs_is_killed_with_everything_it_started(tmp_path, monkeypatch):
    pidfile = tmp_path / "child.pid"
    browser = _fake_browser(tmp_path, f'sleep 300 & echo $! > "{pidfile}"; sleep 300\n')
    monkeypatch.setenv("WORKBENCH_CHROMIUM", str(browser))
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    with pytest.raises(pdf_mod.ReportError, match="did not finish"):
        pdf_mod.html_to_pdf(html, tmp_path / "r.pdf", timeout=2, isolate=False)
    child = int(pidfile.read_text())
    status = Path(f"/proc/{child}/status")
    # SIGKILL is sent to the whole group; on a loaded machine the orphan may take a moment to be scheduled and die
    deadline = time.monotonic() + 10
    while status.exists() and "State:\tZ" not in status.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not status.exists() or "State:\tZ" in status.read_text()  # the helper it left went with it
