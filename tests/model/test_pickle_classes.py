"""Issue 12's pickle bypass classes, each with a malicious case and a benign twin that must stay quiet.

FRAME semantics (framed and unframed readings), pickles carried inside pickles (bytes, base64, hex), names
resolved before classifying (dotted, aliased, Python 2), integers and strings ``pickletools`` rejects but the
unpickler reads, and padding that used to exhaust the opcode budget. Every pickle is written opcode by opcode (or
by ``pickle.dumps`` of plain data); nothing is unpickled.
"""

from __future__ import annotations

import base64
import io
import os
import pickle
import pickletools
import struct

import pytest

from tests.model import hostile_fixtures as hf
from workbench.model.limits import ScanLimits
from workbench.model.pickles import analyse_pickle_bytes
from workbench.model.policy import default_policy
from workbench.model.scan_findings import findings_for

PAYLOAD = hf.glob("posix", "system") + hf.uni("echo pwned") + hf.TUPLE1 + hf.REDUCE + hf.STOP


@pytest.fixture(autouse=True)
def _no_unpickling(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("something tried to unpickle evidence")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


def _imports(report):
    return [(i.qualified, i.safety) for i in report.imports]


def _frame(body_len: int) -> bytes:
    return b"\x95" + struct.pack("<Q", body_len)


def _readings(report):
    return [f for f in findings_for([], [("m.pkl", report)], [], [], {}, {}) if f.category == "scanner_disagreement"]


# ------------------------------------------------------------------------------------------------------- FRAME
def test_a_string_running_past_its_frame_is_read_on_and_is_a_divergence():
    body = hf.short_uni("A" * 16) + hf.POP + PAYLOAD
    data = hf.PROTO(4) + _frame(3) + body  # the frame ends inside the string
    report = analyse_pickle_bytes(data)
    assert _imports(report) == [("posix.system", "dangerous")]
    [(offset, text)] = report.divergences
    assert offset == 11 and "runs past the end of its FRAME (offset 14" in text
    [finding] = _readings(report)
    assert finding.severity.value == "high" and "posix.system" in finding.detail


def test_a_frame_inside_a_frame_and_a_frame_past_the_end_are_divergences():
    inner = hf.PROTO(4) + _frame(11) + _frame(2) + hf.EMPTY_DICT + hf.STOP
    offsets = [o for o, _ in analyse_pickle_bytes(inner).divergences]
    assert offsets == [11]
    past = analyse_pickle_bytes(hf.PROTO(4) + _frame(1000) + hf.EMPTY_DICT + hf.STOP)
    assert "past the end of the data" in past.divergences[0][1]


@pytest.mark.parametrize("protocol", [4, 5])
def test_benign_framed_pickles_have_no_divergence(protocol):
    data = pickle.dumps({"weights": list(range(5000)), "name": "x" * 70_000, "b": b"\x00" * 100}, protocol=protocol)
    assert data[2:3] == b"\x95"  # framed
    report = analyse_pickle_bytes(data)
    assert report.divergences == () and report.streams[0].end == len(data)
    assert _readings(report) == []


# ------------------------------------------------------------------------------------------------------- nested
INNER = hf.PROTO(2) + PAYLOAD


@pytest.mark.parametrize(
    ("outer", "path"),
    [
        (hf.PROTO(3) + b"B" + struct.pack("<I", len(INNER)) + INNER + hf.STOP, "BINBYTES at offset 2"),
        (hf.PROTO(3) + b"C" + bytes([len(INNER)]) + INNER + hf.STOP, "SHORT_BINBYTES at offset 2"),
        (hf.PROTO(5) + b"\x96" + struct.pack("<Q", len(INNER)) + INNER + hf.STOP, "BYTEARRAY8 at offset 2"),
        (hf.PROTO(2) + hf.uni(base64.b64encode(INNER).decode()) + hf.STOP, "base64 text in BINUNICODE at offset 2"),
        (hf.PROTO(2) + hf.uni(base64.urlsafe_b64encode(INNER).decode()) + hf.STOP, "base64 text in BINUNICODE"),
        (hf.PROTO(2) + hf.uni(INNER.hex()) + hf.STOP, "hex text in BINUNICODE at offset 2"),
        (b"S'" + base64.b64encode(INNER) + b"'\n.", "base64 text in STRING at offset 0"),
        (hf.PROTO(3) + b"C" + bytes([len(INNER) * 2]) + INNER.hex().encode() + hf.STOP, "hex text in SHORT_BINBYTES"),
    ],
)
def test_a_pickle_carried_inside_a_pickle_is_analysed(outer, path):
    report = analyse_pickle_bytes(outer)
    [imp] = report.imports
    assert (imp.qualified, imp.safety, imp.offset) == ("posix.system", "dangerous", 2)
    assert imp.nested.startswith(path)
    assert report.calls[0].text == "posix.system('echo pwned')" and report.calls[0].nested == imp.nested
    [finding] = [f for f in findings_for([], [("m.pkl", report)], [], [], {}, {}) if f.severity.value == "critical"]
    assert "nested" in finding.title and imp.nested in finding.title


def test_nesting_is_followed_to_its_depth_cap_and_the_rest_is_unexamined():
    data = INNER
    for _ in range(5):
        data = hf.PROTO(3) + b"B" + struct.pack("<I", len(data)) + data + hf.STOP
    report = analyse_pickle_bytes(data)
    assert report.imports == () and report.nested == 3
    assert any("nested more than 3 deep" in u for u in report.unexamined)


def test_a_big_carried_pickle_is_analysed_by_its_head_and_marked_partial():
    inner = hf.PROTO(2) + PAYLOAD[:-1] + hf.POP + hf.uni("x" * 70_000) + hf.STOP
    data = hf.PROTO(3) + b"B" + struct.pack("<I", len(inner)) + inner + hf.STOP
    report = analyse_pickle_bytes(data, limits=ScanLimits(skip_arg_bytes=1024))
    assert _imports(report) == [("posix.system", "dangerous")]
    assert any("only its first" in u for u in report.unexamined)


@pytest.mark.parametrize(
    "value",
    [
        os.urandom(4096),
        base64.b64encode(os.urandom(3000)),
        os.urandom(2000).hex().encode(),
        b"\x80\x02" + os.urandom(500),
        pickle.dumps({"a": [1, 2.5, "b"], "c": None}, protocol=2),
    ],
    ids=["random", "base64-random", "hex-random", "proto-prefix-random", "benign-inner-pickle"],
)
def test_bytes_and_text_that_carry_no_dangerous_pickle_stay_quiet(value):
    for outer in (
        hf.PROTO(3) + b"B" + struct.pack("<I", len(value)) + value + hf.STOP,
        hf.PROTO(2) + hf.uni(base64.b64encode(value).decode()) + hf.STOP,
    ):
        report = analyse_pickle_bytes(outer)
        assert [i for i in report.imports if i.safety != "safe"] == []
        assert [f for f in findings_for([], [("m.pkl", report)], [], [], {}, {}) if f.severity.value in ("high",
                "critical")] == []  # fmt: skip


# ------------------------------------------------------------------------------------------------------- names
DANGEROUS_NAMES = [
    ("pathlib", "os.system", "os.system"),
    ("os.path", "os.system", None),
    ("tempfile", "_os.system", "os.system"),
    ("shutil", "os.popen", "os.popen"),
    ("__builtin__", "eval", "builtins.eval"),
    ("__builtin__", "getattr", "builtins.getattr"),
    ("builtins", "getattr", None),
    ("commands", "getoutput", "subprocess.getoutput"),
    ("posix", "system", None),
    ("nt", "system", None),
    ("_io", "FileIO", None),
    ("code", "InteractiveInterpreter", None),
    ("codeop", "compile_command", None),
    ("runpy", "_run_code", None),
    ("_posixsubprocess", "fork_exec", None),
    ("pty", "spawn", None),
    ("_xxsubinterpreters", "run_string", None),
    ("_interpreters", "exec", None),
    ("concurrent.interpreters", "create", None),
    ("ctypes", "CDLL", None),
    ("cffi", "FFI", None),
    ("importlib", "import_module", None),
    ("pydoc", "locate", None),
    ("timeit", "timeit", None),
    ("socket", "create_connection", None),
    ("http.client", "HTTPSConnection", None),
    ("urllib.request", "urlopen", None),
    ("urllib2", "urlopen", "urllib.request.urlopen"),
    ("ftplib", "FTP", None),
    ("smtplib", "SMTP", None),
    ("requests", "get", None),
    ("aiohttp", "request", None),
    ("webbrowser", "open", None),
    ("picklescan.scanner", "scan_bytes", None),
    ("modelscan.modelscan", "ModelScan", None),
    ("fickling.fickle", "Pickled", None),
    ("numpy", "os.system", "os.system"),
]


@pytest.mark.parametrize(("module", "name", "resolved"), DANGEROUS_NAMES)
def test_names_that_resolve_to_a_dangerous_callable_are_dangerous(module, name, resolved):
    verdict = default_policy().classify(module, name)
    assert verdict.safety == "dangerous" and verdict.resolved == resolved


@pytest.mark.parametrize(
    ("module", "name", "context", "safety"),
    [
        ("__builtin__", "xrange", None, "safe"),
        ("__builtin__", "set", None, "safe"),
        ("copy_reg", "_reconstructor", None, "safe"),
        ("numpy.matrixlib.defmatrix", "matrix", None, "safe"),
        ("numpy.core._internal", "_reconstruct", None, "safe"),
        ("numpy.core.multiarray", "_reconstruct", None, "safe"),
        ("numpy.random._pickle", "__bit_generator_ctor", None, "safe"),
        ("sklearn.pipeline", "Pipeline", None, "safe"),
        ("torch.jit._pickle", "build_intlist", None, "safe"),
        ("__torch__.torch.nn.modules.conv", "Conv2d", "torchscript", "safe"),
        ("__torch__.torch.nn.modules.conv", "Conv2d", None, "unknown"),  # not TorchScript: an ordinary import
        ("torch_.nn", "Module", "torchscript", "unknown"),
        ("sklearn.pipeline", "make_pipeline", None, "unknown"),  # safe names are exact, not by module
        ("collections", "OrderedDict.fromkeys", None, "unknown"),
    ],
)
def test_benign_names_stay_safe_or_unknown(module, name, context, safety):
    assert default_policy().classify(module, name, context).safety == safety


def test_stack_global_with_memoized_dotted_strings_is_resolved():
    data = (
        hf.PROTO(4) + hf.short_uni("pathlib") + hf.MEMOIZE + hf.short_uni("os.system") + hf.MEMOIZE + hf.POP
        + hf.POP + b"h\x00" + b"h\x01" + hf.STACK_GLOBAL + hf.short_uni("id") + hf.TUPLE1 + hf.REDUCE + hf.STOP
    )  # fmt: skip
    [imp] = analyse_pickle_bytes(data).imports
    assert (imp.qualified, imp.safety, imp.resolved, imp.opcode) == (
        "pathlib.os.system", "dangerous", "os.system", "STACK_GLOBAL")  # fmt: skip


def test_torchscript_context_reaches_the_policy():
    data = hf.PROTO(2) + hf.glob("__torch__.m", "Net") + hf.EMPTY_TUPLE + hf.NEWOBJ + hf.STOP
    assert _imports(analyse_pickle_bytes(data)) == [("__torch__.m.Net", "unknown")]
    assert _imports(analyse_pickle_bytes(data, context="torchscript")) == [("__torch__.m.Net", "safe")]


# ------------------------------------------------------------------------------------------------------- integers
@pytest.mark.parametrize(
    "arg",
    [b"I0x10\n", b"L0x" + b"f" * 5000 + b"L\n", b"I" + b"9" * 5000 + b"\n", b"S'caf\xc3\xa9'\n"],
    ids=["int-hex", "long-hex-huge", "int-5000-digits", "string-utf8"],
)
def test_arguments_pickletools_rejects_do_not_stop_the_walk(arg):
    data = hf.PROTO(2) + arg + hf.POP + PAYLOAD
    with pytest.raises(ValueError):
        list(pickletools.genops(io.BytesIO(data)))  # what picklescan and every genops-based scanner meet
    report = analyse_pickle_bytes(data)
    assert _imports(report) == [("posix.system", "dangerous")]
    assert report.lenient and report.lenient[0][0] == 2
    [finding] = _readings(report)
    assert finding.severity.value == "high"


def test_a_huge_long4_and_ordinary_integers_read_as_pickletools_reads_them():
    data = (
        hf.PROTO(2) + b"\x8b" + struct.pack("<i", 3000) + b"\x01" * 3000 + hf.POP + b"I+12\nI 7\nL12L\n0000" + PAYLOAD
    )
    report = analyse_pickle_bytes(data, limits=ScanLimits(skip_arg_bytes=1024))
    assert _imports(report) == [("posix.system", "dangerous")] and report.lenient == ()
    assert analyse_pickle_bytes(pickle.dumps([1, -5, 2**70, 3.5], protocol=0)).lenient == ()
    octal = analyse_pickle_bytes(hf.PROTO(2) + b"I010\n" + hf.POP + PAYLOAD)  # C: strtol reads 8; Python: fails
    assert _imports(octal) == [("posix.system", "dangerous")] and "strtol" in octal.lenient[0][1]


# ------------------------------------------------------------------------------------------------------- budget
@pytest.mark.parametrize("pad", [b")0", b"(1", b"N0", b"K\x070", b"M\x01\x020", b")0(1]0}0"])
def test_padding_before_the_payload_does_not_exhaust_the_opcode_budget(pad):
    data = hf.PROTO(2) + pad * 200_000 + PAYLOAD
    report = analyse_pickle_bytes(data, limits=ScanLimits(max_opcodes=1000))
    assert _imports(report) == [("posix.system", "dangerous")]
    assert report.streams[0].opcodes == 1 + 200_000 * 2 * (len(pad) // _unit(pad)) + 5  # PROTO, pairs, payload
    assert report.unexamined == ()


def _unit(pad: bytes) -> int:
    return {b"K": 3, b"M": 4}.get(pad[:1], 2)


def test_opcodes_that_do_work_are_still_charged_to_the_budget():
    data = hf.PROTO(2) + hf.EMPTY_LIST + b"Na" * 5000 + hf.POP + PAYLOAD
    report = analyse_pickle_bytes(data, limits=ScanLimits(max_opcodes=1000))
    assert report.imports == ()
    assert report.unexamined == ("stream 0: opcode budget reached; the rest is not analysed",)


def test_marks_past_the_cap_fall_back_to_imports_only():
    data = hf.PROTO(2) + hf.MARK * 150_000 + PAYLOAD
    report = analyse_pickle_bytes(data)
    assert _imports(report) == [("posix.system", "dangerous")]
    assert any("open MARKs" in p for p in report.problems)


def test_a_pickle_in_base64_text_longer_than_the_argument_cap_is_analysed_by_its_head():
    inner = hf.PROTO(2) + PAYLOAD[:-1] + hf.POP + hf.uni("x" * 100_000) + hf.STOP
    data = hf.PROTO(2) + hf.uni(base64.b64encode(inner).decode()) + hf.STOP
    report = analyse_pickle_bytes(data, limits=ScanLimits(skip_arg_bytes=4096))
    [imp] = report.imports
    assert (imp.qualified, imp.nested) == ("posix.system", "base64 text in BINUNICODE at offset 2")
    assert any("only its first" in u for u in report.unexamined)
    quiet = hf.PROTO(2) + hf.uni("y" * 100_000) + b"\x8b" + struct.pack("<i", 9000) + b"\x01" * 9000 + hf.POP
    assert analyse_pickle_bytes(quiet + hf.uni("z" * 20) + hf.STOP, limits=ScanLimits(skip_arg_bytes=4096)).nested == 0


def test_a_dangerous_import_after_ten_thousand_others_is_still_recorded():
    noise = b"".join(hf.glob(f"pkg{i}", "Thing") + hf.POP for i in range(10_050))
    report = analyse_pickle_bytes(hf.PROTO(2) + noise + PAYLOAD)
    assert len(report.imports) == 10_051
    assert (report.imports[-1].qualified, report.imports[-1].safety) == ("posix.system", "dangerous")
    safe_noise = b"".join(hf.glob("collections", "OrderedDict") + hf.POP for _ in range(10_050))
    assert len(analyse_pickle_bytes(hf.PROTO(2) + safe_noise + PAYLOAD).imports) == 10_001
