"""TensorFlow graphs judged without TensorFlow: the ops of ``saved_model.pb`` (and frozen ``*.pb`` GraphDefs) that
reach outside the graph, and the Keras layer metadata of ``keras_metadata.pb``.

Loading a SavedModel runs its graph's ops. Most are arithmetic; some run Python registered in the loading process
(``PyFunc``, ``EagerPyFunc``), read or write files (``ReadFile``, ``WriteFile``, ``MatchingFiles``, a ``PrintV2``
whose ``output_stream`` is a ``file://`` URL, ``Debug*`` ops with ``debug_urls``, ``ImmutableConst``'s memory-mapped
region), or open datasets and summary writers. The file is read with :class:`~workbench.model.protowire.WireReader`
(streamed, every length checked, no generated code, no descriptor), following only the paths that hold nodes:

``SavedModel{2: MetaGraphDef{2: GraphDef{1: NodeDef, 2: FunctionDefLibrary{1: FunctionDef{1: OpDef{1: name},
3: NodeDef}}}}}``, ``NodeDef{1: name, 2: op, 5: attr{1: key, 2: AttrValue{1: list{2: s}, 2: s}}}``.

Checkpoint ops (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``), asset-table initialisers and ``PrintV2`` to the
standard streams are what every SavedModel holds: they are counted, not reported.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from workbench.model.code_reference import HIGH, MEDIUM, CodeReference
from workbench.model.keras_format import keras_config_references
from workbench.model.protowire import LEN, ProtoError, WireReader, fields_in

__all__ = [
    "DANGEROUS_OPS",
    "FILE_OPS",
    "MAX_NODES",
    "GraphScan",
    "read_graph_ops",
    "read_keras_metadata",
    "text_graph_ops",
]

#: op -> what it does on load (high)
DANGEROUS_OPS: dict[str, str] = {
    "PyFunc": "runs a Python function of the loading process",
    "PyFuncStateless": "runs a Python function of the loading process",
    "EagerPyFunc": "runs a Python function of the loading process",
    "ReadFile": "reads a file",
    "WriteFile": "writes a file",
    "MatchingFiles": "lists files matching a pattern",
    "ImmutableConst": "memory-maps a region of a file",
}
#: op -> what it does (medium): dataset, reader and summary ops that open files or connections
FILE_OPS: dict[str, str] = {
    **dict.fromkeys(("TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
                     "FixedLengthRecordDatasetV2", "WholeFileReader", "WholeFileReaderV2", "TFRecordReader",
                     "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2", "LoadDataset", "LoadAndRemapMatrix"),
                    "reads files"),
    **dict.fromkeys(("DatasetToTFRecord", "SaveDataset", "SaveDatasetV2", "SnapshotDataset", "SnapshotDatasetV2",
                     "CreateSummaryFileWriter", "WriteSummary", "WriteRawProtoSummary"), "writes files"),
    **dict.fromkeys(("DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4",
                     "RegisterDataset", "RegisterDatasetV2"), "connects to a tf.data service"),
}  # fmt: skip
_DEBUG_OPS = frozenset({"DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
                        "DebugNumericSummary", "DebugNumericSummaryV2", "Copy", "CopyHost"})  # fmt: skip
#: attributes read (others are skipped): the PyFunc token, where PrintV2 and the Debug ops write, the mapped region
_ATTRS = frozenset({"token", "output_stream", "debug_urls", "memory_region_name", "debug_ops_spec"})
#: nodes walked (graph and functions together); past it the rest of the file is not examined
MAX_NODES = 5_000_000
#: references kept (then counted)
MAX_REFS = 100
#: longest name, op and attribute string read
MAX_NAME = 512
#: protobuf's own limit: TensorFlow refuses a larger SavedModel
MAX_BYTES = 2 * 1024**3
#: nodes up to this size are read whole and parsed in memory (larger ones, a Const holding weights, are streamed)
_SMALL_NODE = 64 * 1024


@dataclass(slots=True)
class GraphScan:
    """What the walk of a graph file found.

    Attributes:
        refs: one ``tf_graph_op`` reference per node with a dangerous or file op (at most 100).
        ops: how many nodes use each op.
        nodes: nodes walked; functions: functions of the library walked.
        error: why the walk stopped early (the bytes break the format), or None.
        capped: what a cap left unexamined, or None.
        more: references past the cap (counted).
    """

    refs: list[CodeReference] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    nodes: int = 0
    functions: int = 0
    error: str | None = None
    capped: str | None = None
    more: int = 0


def read_graph_ops(fh: BinaryIO, size: int, *, seekable: bool, saved_model: bool = True) -> GraphScan:
    """Walk the nodes of a SavedModel (``saved_model.pb``) or of a frozen GraphDef.

    Args:
        fh: the file or member, at its start; size: its length; seekable: whether skipping may seek.
        saved_model: the file is a SavedModel (else a GraphDef).

    Returns:
        The :class:`GraphScan`; a format error ends the walk and is in ``error`` (what was found before is kept).
    """
    scan = GraphScan()
    if size > MAX_BYTES:
        scan.capped = f"{size} bytes, over protobuf's 2 GiB limit (TensorFlow refuses it): graph not read"
        return scan
    r = WireReader(fh, size, seekable=seekable, lenient=True)
    try:
        if saved_model:
            for number, wire, length in r.fields(size):
                if number == 2 and wire == LEN:
                    for n2, w2, l2 in r.fields(r.pos + length):
                        if n2 == 2 and w2 == LEN:
                            _graph(r, r.pos + l2, scan)
        else:
            _graph(r, size, scan)
    except ProtoError as exc:
        scan.error = str(exc)
    except _Capped:
        scan.capped = f"more than {MAX_NODES} graph nodes: the rest of the file is not examined"
    if r.clamped and scan.error is None:
        scan.error = (
            f"at offset {r.clamped[0]}: a length runs past the end of the file (truncated), read as far as it goes"
        )
    return scan


class _Capped(Exception):
    """The node cap is reached."""


def _graph(r: WireReader, end: int, scan: GraphScan) -> None:
    for number, wire, length in r.fields(end):
        if wire != LEN:
            continue
        if number == 1:
            _node(r, r.pos + length, scan, None)
        elif number == 2:
            for n2, w2, l2 in r.fields(r.pos + length):
                if n2 == 1 and w2 == LEN:
                    scan.functions += 1
                    _function(r, r.pos + l2, scan)


def _function(r: WireReader, end: int, scan: GraphScan) -> None:
    name = None
    for number, wire, length in r.fields(end):
        if wire != LEN:
            continue
        if number == 1:
            for n2, w2, l2 in r.fields(r.pos + length):
                if n2 == 1 and w2 == LEN:
                    name = r.string(l2, MAX_NAME)
        elif number == 3:
            _node(r, r.pos + length, scan, name)


def _node(r: WireReader, end: int, scan: GraphScan, function: str | None) -> None:
    scan.nodes += 1
    if scan.nodes > MAX_NODES:
        raise _Capped
    name = op = ""
    attrs: dict[str, list[str]] = {}
    if end - r.pos <= _SMALL_NODE and (not r.clamped or end < r.size):
        buf = r.read(end - r.pos)  # a small node (most are) is read whole and parsed in memory
        for number, wire, length, at in fields_in(buf):
            if wire != LEN:
                continue
            if number == 1:
                name = _text(buf, at, length)
            elif number == 2:
                op = _text(buf, at, length)
            elif number == 5:
                _attr_in(buf, at, at + length, attrs)
    else:
        for number, wire, length in r.fields(end):
            if wire != LEN:
                continue
            if number == 1:
                name = r.string(length, MAX_NAME)
            elif number == 2:
                op = r.string(length, MAX_NAME)
            elif number == 5:
                _attr(r, r.pos + length, attrs)
    scan.ops[op] += 1
    ref = _judge(name, op, attrs, function)
    if ref is not None:
        if len(scan.refs) < MAX_REFS:
            scan.refs.append(ref)
        else:
            scan.more += 1


def _attr(r: WireReader, end: int, attrs: dict[str, list[str]]) -> None:
    key: str | None = None
    for number, wire, length in r.fields(end):
        if wire != LEN:
            continue
        if number == 1:
            key = r.string(length, MAX_NAME)
        elif number == 2 and key in _ATTRS:
            attrs[key] = _attr_strings(r, r.pos + length)


def _text(buf: bytes, at: int, length: int) -> str:
    return buf[at : at + min(length, MAX_NAME)].decode("utf-8", "replace")


def _attr_in(buf: bytes, start: int, end: int, attrs: dict[str, list[str]]) -> None:
    """:func:`_attr` over a node held in memory."""
    key: str | None = None
    for number, wire, length, at in fields_in(buf, start, end):
        if wire != LEN:
            continue
        if number == 1:
            key = _text(buf, at, length)
        elif number == 2 and key in _ATTRS:
            out: list[str] = []
            for n2, w2, l2, a2 in fields_in(buf, at, at + length):
                if w2 == LEN and n2 == 2 and len(out) < 16:
                    out.append(_text(buf, a2, l2))
                elif w2 == LEN and n2 == 1:
                    out += [
                        _text(buf, a3, l3) for n3, w3, l3, a3 in fields_in(buf, a2, a2 + l2) if n3 == 2 and w3 == LEN
                    ]
            attrs[key] = out[:16]


def _attr_strings(r: WireReader, end: int) -> list[str]:
    """The string (``s``) or list of strings (``list.s``) of an AttrValue (at most 16)."""
    out: list[str] = []
    for number, wire, length in r.fields(end):
        if wire != LEN:
            continue
        if number == 2 and len(out) < 16:
            out.append(r.string(length, MAX_NAME))
        elif number == 1:
            for n2, w2, l2 in r.fields(r.pos + length):
                if n2 == 2 and w2 == LEN and len(out) < 16:
                    out.append(r.string(l2, MAX_NAME))
    return out


def _judge(name: str, op: str, attrs: dict[str, list[str]], function: str | None) -> CodeReference | None:
    where = f"node {name[:120]!r}" + (f" of function {function[:120]!r}" if function else "")
    if op in DANGEROUS_OPS:
        extra = ""
        if attrs.get("token"):
            extra = f" (token {attrs['token'][0][:80]!r})"
        elif attrs.get("memory_region_name"):
            extra = f" (region {attrs['memory_region_name'][0][:120]!r})"
        return CodeReference("tf_graph_op", HIGH, f"op {op} at {where}: {DANGEROUS_OPS[op]} when the graph runs{extra}")
    if op == "PrintV2":
        stream = (attrs.get("output_stream") or ["stderr"])[0]
        if stream.startswith("file://"):
            return CodeReference("tf_graph_op", HIGH, f"op PrintV2 at {where}: prints to the file {stream[:200]!r}")
        return None
    if op in _DEBUG_OPS:
        urls = attrs.get("debug_urls") or []
        if urls:
            shown = ", ".join(repr(u[:120]) for u in urls[:3])
            return CodeReference("tf_graph_op", HIGH, f"op {op} at {where}: sends tensors to {shown}")
        return None if op in ("Copy", "CopyHost") else CodeReference(
            "tf_graph_op", MEDIUM, f"op {op} at {where}: a debugger op (tensors may be written out)")  # fmt: skip
    if op in FILE_OPS:
        return CodeReference("tf_graph_op", MEDIUM, f"op {op} at {where}: {FILE_OPS[op]} when the graph runs")
    return None


def read_keras_metadata(fh: BinaryIO, size: int, *, seekable: bool, max_string: int = 32 * 1024 * 1024) -> GraphScan:
    """The Keras layer metadata of ``keras_metadata.pb`` (``SavedMetadata{1: SavedObject{..., metadata: JSON}}``),
    each JSON string judged as a Keras config (:func:`~workbench.model.keras_format.keras_config_references`).

    Every string field of each saved object that parses as a JSON object is judged, whatever its field number.

    Returns:
        A :class:`GraphScan` whose ``refs`` are Keras references and ``nodes`` the saved objects read.
    """
    scan = GraphScan()
    r = WireReader(fh, size, seekable=seekable)
    try:
        for number, wire, length in r.fields(size):
            if number != 1 or wire != LEN:
                continue
            scan.nodes += 1
            path = ""
            for n2, w2, l2 in r.fields(r.pos + length):
                if w2 != LEN:
                    continue
                if l2 > max_string:
                    scan.capped = f"saved object {scan.nodes}: a {l2}-byte string over the {max_string}-byte cap"
                    continue
                text = r.read(l2).decode("utf-8", "replace")
                doc = _json_object(text)
                if doc is None:
                    path = text[:200] if n2 == 3 else path
                    continue
                for ref in keras_config_references(doc):
                    shown = f"{path}: " if path else ""
                    if len(scan.refs) < MAX_REFS:
                        scan.refs.append(CodeReference(ref.kind, ref.severity, shown + ref.summary))
    except ProtoError as exc:
        scan.error = str(exc)
    return scan


def _json_object(text: str) -> Any:
    if not text.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


_TEXT_OP = re.compile(r'\bop:\s*"([A-Za-z0-9_>.]{1,128})"')
_TEXT_NAME = re.compile(r'\bname:\s*"((?:[^"\\]|\\.){0,512})"')
_TEXT_ATTR = re.compile(
    r'key:\s*"(token|output_stream|debug_urls|memory_region_name)"\s*value\s*\{\s*(?:list\s*\{\s*)?'
    r's:\s*"((?:[^"\\]|\\.){0,512})"'
)


def text_graph_ops(text: str) -> GraphScan:
    """The ops of a SavedModel or GraphDef in protobuf text format (``saved_model.pbtxt``, ``*.pbtxt``), which
    TensorFlow loads like the binary one: every ``op: "…"`` judged (whatever the order of the fields), named by the
    closest ``name: "…"`` of its node, with the attributes up to the next op read for the PyFunc token, the print
    stream, debug URLs and mapped regions.

    Returns:
        A :class:`GraphScan` (``nodes``: the ops found; ``error`` is never set: the text is searched, not parsed).
    """
    scan = GraphScan()
    ops = list(_TEXT_OP.finditer(text))
    for i, match in enumerate(ops[:MAX_NODES]):
        scan.nodes += 1
        start = ops[i - 1].end() if i else 0
        end = ops[i + 1].start() if i + 1 < len(ops) else len(text)
        names = list(_TEXT_NAME.finditer(text, max(start, match.start() - 4096), match.start()))
        after = _TEXT_NAME.search(text, match.end(), min(end, match.end() + 4096))
        name = names[-1].group(1) if names else after.group(1) if after else "?"
        attrs: dict[str, list[str]] = {}
        for attr in _TEXT_ATTR.finditer(text, start, min(end, match.end() + 1_000_000)):
            attrs.setdefault(attr.group(1), []).append(attr.group(2))
        op = match.group(1)
        scan.ops[op] += 1
        ref = _judge(name, op, attrs, None)
        if ref is not None:
            if len(scan.refs) < MAX_REFS:
                scan.refs.append(ref)
            else:
                scan.more += 1
    if len(ops) > MAX_NODES:
        scan.capped = f"more than {MAX_NODES} graph nodes: the rest of the file is not examined"
    return scan
