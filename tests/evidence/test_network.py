from __future__ import annotations

import pandas as pd
import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.network import NetworkLoader, split_endpoint

SS = """\
Netid State     Recv-Q Send-Q          Local Address:Port             Peer Address:Port Process
udp   UNCONN    0      0               127.0.0.53%lo:53                    0.0.0.0:*     users:(("systemd-resolve",pid=544,fd=13))
udp   UNCONN    0      0                     0.0.0.0:68                    0.0.0.0:*
tcp   LISTEN    0      4096                  0.0.0.0:8080                  0.0.0.0:*     users:(("python3",pid=4242,fd=7))
tcp   LISTEN    0      128                      [::]:22                       [::]:*     users:(("sshd",pid=612,fd=4))
tcp   ESTAB     0      36                 10.0.0.5:43210            203.0.113.50:443   users:(("python3",pid=4242,fd=15),("python3",pid=4250,fd=15))
tcp   TIME-WAIT 0      0             [2001:db8::5]:59012    [2606:4700::6810:85e5]:443
tcp   LISTEN    0      511                         *:80                          *:*     users:(("nginx: master",pid=900,fd=6))
"""  # noqa: E501


def test_load_ss(make_file, ctx):
    loaded = NetworkLoader().load(make_file("network.txt", SS), ctx)
    df = loaded.frame
    assert loaded.warnings == []
    assert len(df) == 7
    est = df[df["state"] == "ESTAB"].iloc[0].to_dict()
    assert est == {
        "line": 6,
        "netid": "tcp",
        "state": "ESTAB",
        "recv_q": 0,
        "send_q": 36,
        "local_addr": "10.0.0.5",
        "local_port": 43210,
        "peer_addr": "203.0.113.50",
        "peer_port": 443,
        "process_name": "python3",
        "pid": 4242,
        "process": 'users:(("python3",pid=4242,fd=15),("python3",pid=4250,fd=15))',
    }
    assert df.loc[0, "local_addr"] == "127.0.0.53%lo"
    assert pd.isna(df.loc[0, "peer_port"])
    assert pd.isna(df.loc[1, "process_name"]) and pd.isna(df.loc[1, "pid"])
    assert df.loc[3, ["local_addr", "local_port", "peer_addr"]].tolist() == ["::", 22, "::"]
    assert df.loc[5, ["local_addr", "peer_addr", "peer_port"]].tolist() == ["2001:db8::5", "2606:4700::6810:85e5", 443]
    assert df.loc[6, ["local_addr", "peer_addr", "process_name", "pid"]].tolist() == ["*", "*", "nginx: master", 900]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:*", ("0.0.0.0", None)),  # noqa: S104
        ("*:*", ("*", None)),
        ("[::1]:631", ("::1", 631)),
        (":::22", ("::", 22)),
        ("[fe80::1%eth0]:546", ("fe80::1%eth0", 546)),
        ("10.0.0.5:http", None),
        ("10.0.0.5", None),
        ("1.2.3.4:99999", None),
    ],
)
def test_split_endpoint(text, expected):
    assert split_endpoint(text) == expected


def test_no_netid_column(make_file, ctx):
    text = (
        "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\nESTAB  0  0  10.0.0.5:22  10.0.0.9:5050\n"
    )
    df = NetworkLoader().load(make_file("network.txt", text), ctx).frame
    assert pd.isna(df.loc[0, "netid"]) and df.loc[0, "peer_port"] == 5050


def test_bad_line_one_warning(make_file, ctx):
    text = SS + "tcp ESTAB x 0 1.2.3.4:1 5.6.7.8:2\ntcp ESTAB 0 0 1.2.3.4 5.6.7.8:2\n"
    loaded = NetworkLoader().load(make_file("network.txt", text), ctx)
    assert [w.line for w in loaded.warnings] == [9, 10]
    assert len(loaded.frame) == 7


def test_all_bad_is_malformed(make_file, ctx):
    with pytest.raises(MalformedEvidence):
        NetworkLoader().load(make_file("network.txt", "connection refused\n"), ctx)


def test_detect(make_file):
    loader = NetworkLoader()
    assert loader.detect(make_file("sockets-after.out", SS))
    assert not loader.detect(make_file("netstat.txt", "Active Internet connections (servers and established)\n"))


def test_header_without_space_before_process_is_recognised(tmp_path):
    """iproute2 6.1 prints 'Peer Address:PortProcess' when no socket shows a process."""
    from workbench.evidence.base import LoadContext
    from workbench.evidence.network import NetworkLoader

    p = tmp_path / "network.txt"
    p.write_text(
        "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n"
        "tcp   LISTEN 0      128          0.0.0.0:8080       0.0.0.0:*\n"
    )
    loaded = NetworkLoader().load(p, LoadContext("network.txt"))
    assert loaded.warnings == [] and loaded.frame["local_port"].tolist() == [8080]
