"""picklescan's second opinion in its bounded child: a memory blow-up is a limit, a parser disagreement is a finding.

picklescan really runs here (the bundled library, in the child process the workbench starts); the files are
written opcode by opcode and nothing is unpickled.
"""

from __future__ import annotations

from tests.model import hostile_fixtures as hf
from workbench.model.pickles import analyse_pickle_file
from workbench.model.picklescan_opinion import compare_opinions, picklescan_opinion
from workbench.model.scan import scan_model

PAYLOAD = hf.glob("posix", "system") + hf.uni("echo pwned") + hf.TUPLE1 + hf.REDUCE + hf.STOP
MIB = 1024 * 1024


def test_a_memory_blow_up_in_picklescan_is_a_limit_not_a_crash(tmp_path):
    path = tmp_path / "padded.pkl"
    path.write_bytes(hf.PROTO(2) + b")0" * 1_000_000 + PAYLOAD)  # picklescan lists every opcode
    opinion = picklescan_opinion(path, display="padded.pkl", memory_limit=200 * MIB)
    assert not opinion.ran and opinion.error == "second opinion not available: over 200 MiB"
    assert compare_opinions(analyse_pickle_file(path).imports, opinion) == []
    # the walk itself still reaches the payload
    assert [i.qualified for i in analyse_pickle_file(path).imports] == ["posix.system"]


def test_the_child_gives_picklescan_s_opinion_within_the_limit(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(hf.PROTO(2) + PAYLOAD)
    opinion = picklescan_opinion(path, display="plain.pkl")
    assert opinion.ran and opinion.globals == (("posix.system", "dangerous"),) and not opinion.scan_error


def test_an_integer_only_the_unpickler_reads_is_a_parser_disagreement(tmp_path):
    (tmp_path / "m").mkdir()
    path = tmp_path / "m" / "lenient.pkl"
    path.write_bytes(hf.PROTO(2) + b"I0x10\n" + hf.POP + PAYLOAD)
    report = analyse_pickle_file(path)
    opinion = picklescan_opinion(path, display="lenient.pkl")
    assert opinion.globals == ()  # picklescan's genops stops at the integer
    parse, missed = compare_opinions(report.imports, opinion, [report])
    assert (parse.name, parse.ours, parse.theirs) == ("(parse)", "read", "parse error") and "offset 2" in parse.note
    assert (missed.name, missed.ours, missed.theirs) == ("posix.system", "dangerous", None)
    scan = scan_model(tmp_path / "m")
    by_category = {(f.category, f.severity.value) for f in scan.findings}
    assert ("pickle_dangerous_import", "critical") in by_category
    assert ("scanner_disagreement", "medium") in by_category and ("scanner_disagreement", "high") in by_category


def test_a_benign_pickle_gives_no_disagreement(tmp_path):
    path = tmp_path / "benign.pkl"
    path.write_bytes(hf.benign_dict())
    report = analyse_pickle_file(path)
    assert compare_opinions(report.imports, picklescan_opinion(path, display="benign.pkl"), [report]) == []
