"""Static pickle analysis over hand-crafted hostile pickles: exact imports, offsets, classes, calls and streams.

Fixtures come from ``hostile_fixtures.py`` (opcodes written by hand, never ``pickle.dumps`` of anything dangerous);
a guard fails the test session's analysis if anything tries to unpickle.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from tests.model import hostile_fixtures as hf
from workbench.errors import RuleError
from workbench.model.limits import ScanLimits
from workbench.model.pickles import analyse_pickle, analyse_pickle_bytes, analyse_pickle_file, probe_pickle
from workbench.model.picklescan_opinion import Disagreement, compare_opinions, picklescan_opinion
from workbench.model.policy import DEFAULT_POLICY_PATH, default_policy, load_policy, split_global


@pytest.fixture(autouse=True)
def _no_unpickling(monkeypatch):
    """Any attempt to unpickle during a test is an error."""

    def refuse(*_a, **_k):
        raise AssertionError("something tried to unpickle evidence")

    for name in ("load", "loads", "Unpickler", "_load", "_loads"):
        if hasattr(pickle, name):
            monkeypatch.setattr(pickle, name, refuse)


# name -> (imports as (module.name, offset, opcode, stream, class), calls as (text, offset, opcode),
#          streams as (start, end, protocol), trailing offset)
CASES = {
    "global_reduce": (
        [("posix.system", 2, "GLOBAL", 0, "dangerous")],
        [("posix.system('echo pwned')", 32, "REDUCE")],
        [(0, 34, 2)],
        None,
    ),
    "memo_evasion": (
        [("os.system", 30, "STACK_GLOBAL", 0, "dangerous")],
        [("os.system('id')", 36, "REDUCE")],
        [(0, 38, 4)],
        None,
    ),
    "stack_global_without_proto": (
        [("builtins.eval", 16, "STACK_GLOBAL", 0, "dangerous")],
        [("builtins.eval('1+1')", 23, "REDUCE")],
        [(0, 25, None)],
        None,
    ),
    "inst_protocol0": (
        [("os.system", 21, "INST", 0, "dangerous")],
        [("os.system('touch /tmp/pwned')", 21, "INST")],
        [(0, 33, None)],
        None,
    ),
    "obj_protocol1": (
        [("subprocess.check_output", 1, "GLOBAL", 0, "dangerous")],
        [("subprocess.check_output(['ls', '-l'])", 42, "OBJ")],
        [(0, 44, None)],
        None,
    ),
    "invalid_utf8_global": (
        [("os\\xff.system", 2, "GLOBAL", 0, "unknown")],
        [("os\\xff.system('id')", 22, "REDUCE")],
        [(0, 24, 2)],
        None,
    ),
    "two_streams": (
        [("posix.system", 13, "GLOBAL", 1, "dangerous")],
        [("posix.system('echo pwned')", 43, "REDUCE")],
        [(0, 11, 4), (11, 45, 2)],
        None,
    ),
    "garbage_after_stop": ([], [], [(0, 11, 4)], 11),
    "truncated": ([("posix.system", 2, "GLOBAL", 0, "dangerous")], [], [(0, None, 2)], None),
    "unknown_class_newobj": (
        [("__main__.Net", 2, "GLOBAL", 0, "unknown")],
        [("__main__.Net.__new__()", 17, "NEWOBJ")],
        [(0, 19, 2)],
        None,
    ),
    "dunder_attribute": (
        [("builtins.object.__subclasses__", 35, "STACK_GLOBAL", 0, "dangerous")],
        [("builtins.object.__subclasses__()", 37, "REDUCE")],
        [(0, 39, 4)],
        None,
    ),
    "ext_opcode": (
        [("copyreg.extension_registry.code_7", 2, "EXT1", 0, "unknown")],
        [("copyreg.extension_registry.code_7()", 5, "REDUCE")],
        [(0, 7, 2)],
        None,
    ),
    "torch_state_dict_pickle": (
        [
            ("collections.OrderedDict", 2, "GLOBAL", 0, "safe"),
            ("torch._utils._rebuild_tensor_v2", 40, "GLOBAL", 0, "safe"),
            ("torch.FloatStorage", 87, "GLOBAL", 0, "safe"),
            ("collections.OrderedDict", 138, "GLOBAL", 0, "safe"),
        ],
        [],
        [(0, 169, 2)],
        None,
    ),
    "legacy_torch": (
        [
            ("collections.OrderedDict", 47, "GLOBAL", 3, "safe"),
            ("torch._utils._rebuild_tensor_v2", 85, "GLOBAL", 3, "safe"),
            ("torch.FloatStorage", 132, "GLOBAL", 3, "safe"),
            ("collections.OrderedDict", 183, "GLOBAL", 3, "safe"),
        ],
        [],
        [(0, 15, 2), (15, 21, 2), (21, 45, 2), (45, 214, 2), (214, 225, 2)],
        225,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_pickle_exact(name):
    imports, calls, streams, trailing = CASES[name]
    report = analyse_pickle_bytes(getattr(hf, name)())
    assert [(i.qualified, i.offset, i.opcode, i.stream, i.safety) for i in report.imports] == imports
    assert [(c.text, c.offset, c.opcode) for c in report.calls] == calls
    assert [(s.start, s.end, s.protocol) for s in report.streams] == streams
    assert report.trailing == trailing


def test_problems_name_the_offset():
    assert analyse_pickle_bytes(hf.truncated()).problems == (
        "stream 0: at offset 16: BINUNICODE: not enough data in stream to read uint4",
    )
    bad = analyse_pickle_bytes(hf.invalid_utf8_global())
    assert bad.problems == ("at offset 2: GLOBAL/INST argument is not valid UTF-8 (the unpickler fails here)",)
    assert bad.imports[0].note == "invalid UTF-8 in the GLOBAL/INST argument"
    assert analyse_pickle_bytes(hf.global_reduce()).problems == ()


def test_not_a_pickle_has_no_stream():
    report = analyse_pickle_bytes(hf.PNG)
    assert report.streams == () and report.imports == () and report.trailing == 0
    assert not report.is_pickle


def test_member_name_is_carried(tmp_path):
    report = analyse_pickle(io.BytesIO(hf.global_reduce()), member="archive/data.pkl")
    assert report.member == "archive/data.pkl"
    assert {i.member for i in report.imports} == {"archive/data.pkl"}
    path = tmp_path / "p.pkl"
    path.write_bytes(hf.global_reduce())
    assert analyse_pickle_file(path).imports[0].qualified == "posix.system"


def test_line_cap_stops_a_huge_protocol0_argument():
    data = b"c" + b"o" * 5000 + b"\nsystem\n"
    report = analyse_pickle_bytes(data, limits=ScanLimits(max_line_bytes=1024))
    assert report.problems == (
        "no pickle stream at offset 0: at offset 0: GLOBAL: argument line longer than 1024 bytes",
    )
    assert report.streams == () and report.imports == ()


def test_large_arguments_are_skipped_not_held():
    blob = b"\x8e" + (4096).to_bytes(8, "little") + bytes(4096)  # BINBYTES8 of 4 KiB
    data = hf.PROTO(4) + blob + hf.POP + hf.global_reduce()[2:]
    report = analyse_pickle_bytes(data, limits=ScanLimits(skip_arg_bytes=1024))
    assert [(i.qualified, i.offset) for i in report.imports] == [("posix.system", 4108)]
    assert report.streams[0].end == len(data)
    lying = hf.PROTO(4) + b"\x8e" + (1 << 40).to_bytes(8, "little") + b"tiny"
    error = analyse_pickle_bytes(lying, limits=ScanLimits(skip_arg_bytes=1024)).streams[0].error
    assert error.startswith("at offset 2: BINBYTES8: expected 1099511627776 bytes in a bytes8, but only 4 remain")


def test_opcode_budget():
    report = analyse_pickle_bytes(hf.torch_state_dict_pickle(), limits=ScanLimits(max_opcodes=10))
    assert report.streams[0].error == "opcode budget reached"
    assert report.streams[0].opcodes == 10


def test_stack_underflow_falls_back_to_import_listing():
    data = hf.REDUCE + hf.glob("os", "system") + hf.STOP
    report = analyse_pickle_bytes(data)
    assert [(i.qualified, i.safety) for i in report.imports] == [("os.system", "dangerous")]
    assert report.problems == ("at offset 0: REDUCE cannot be followed (stack underflow); imports only from here",)


@pytest.mark.parametrize(
    ("head", "whole", "expected"),
    [
        (pickle.dumps([1, "a", None], protocol=0), True, 11),
        (hf.inst_protocol0(), True, 4),
        (hf.truncated(), True, 2),
        (b"Hello world\n", True, None),
        (b"import os\nos.system('id')\n", True, None),
        (b'{"a": 1}', True, None),
        (b"N.", True, 2),
        (b"\x80\x02garbage", True, None),
    ],
)
def test_probe(head, whole, expected):
    assert probe_pickle(head, whole_file=whole) == expected


def test_policy_examples_and_precedence():
    policy = default_policy()
    assert policy.classify("posix", "system").rule == "process-execution"
    assert policy.classify("builtins", "set").safety == "safe"
    assert policy.classify("builtins", "getattr").safety == "dangerous"
    assert policy.classify("collections", "OrderedDict.fromkeys").safety == "unknown"  # safe names are exact
    assert policy.classify("builtins", "getattr.__call__").safety == "dangerous"
    assert policy.classify(None, "system").rule == "unresolved"
    assert policy.classify("torch._utils", "_rebuild_from_type_v2").safety == "unknown"
    assert split_global(policy, "torch._inductor.codecache.compile_file") == (
        "torch._inductor.codecache",
        "compile_file",
    )
    for rule in policy.rules:  # every example and counterexample was checked on load; spot-check the API
        module, name = split_global(policy, rule.example)
        assert policy.classify(module, name, rule.context).safety == rule.safety, rule.id


def _write_policy(tmp_path: Path, rules: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nrules:\n" + rules)
    return path


RULE = """  - id: {id}
    class: {cls}
    modules: [os]
    names: {names}
    reason: test
    example: {example}
    counterexample: posixpath.join
"""


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (RULE.format(id="a", cls="dangerous", names='"*"', example="os.system") * 2, "(rule a): duplicate rule id"),
        (RULE.format(id="a", cls="evil", names='"*"', example="os.system"), "class must be safe or dangerous"),
        (RULE.format(id="a", cls="safe", names='"*"', example="os.system"), "a safe rule must list its names"),
        (RULE.format(id="a", cls="dangerous", names="[popen]", example="os.system"), "example 'os.system' is not"),
        (RULE.format(id="Bad_Id", cls="dangerous", names='"*"', example="os.system"), "rule id 'Bad_Id'"),
        (RULE.format(id="a", cls="dangerous", names='"*"', example="os.system") + "    extra: 1\n", "unknown keys"),
    ],
)
def test_policy_validation(tmp_path, rules, message):
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_policy(_write_policy(tmp_path, rules))


def test_shipped_policy_loads_from_its_path():
    assert len(load_policy(DEFAULT_POLICY_PATH).rules) == len(default_policy().rules) >= 20


def test_picklescan_misses_the_memo_evasion(tmp_path):
    path = tmp_path / "memo_evasion.pkl"
    path.write_bytes(hf.memo_evasion())
    opinion = picklescan_opinion(path, display="memo_evasion.pkl")
    # picklescan 1.0.5 memoizes the argument of the opcode before MEMOIZE (here POP: None)
    assert opinion.globals == (("None.system", "unknown"),)
    ours = analyse_pickle_file(path).imports
    assert compare_opinions(ours, opinion) == [
        Disagreement("None.system", None, "unknown", "only picklescan reports this import"),
        Disagreement(
            "os.system",
            "dangerous",
            None,
            "only the genops analysis sees this import (later stream, memo indirection or unusual member)",
        ),
    ]


def test_picklescan_agrees_on_the_plain_payload(tmp_path):
    path = tmp_path / "optimizer.pkl"
    path.write_bytes(hf.global_reduce())
    opinion = picklescan_opinion(path, display="optimizer.pkl")
    assert opinion.globals == (("posix.system", "dangerous"),) and opinion.error is None
    assert compare_opinions(analyse_pickle_file(path).imports, opinion) == []
