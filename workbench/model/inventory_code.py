"""The inventory's readers of code riding along with a model: Keras HDF5 attributes, Keras configs, safetensors
metadata, TensorFlow graphs and TorchScript sources.

Each function takes the inventory's examiner (:mod:`workbench.model.inventory`, which provides ``limits``,
``policy``, ``inv``, ``_read_all``, ``_warn``, ``_unexamined`` and ``_not_analysed``) and one file or archive member,
records what it could not examine (``_unexamined``: partly, ``_not_analysed``: nothing) and small facts in
``details``, and returns the :class:`~workbench.model.code_reference.CodeReference` it found; the examiner keeps them
with the file and member (:mod:`workbench.model.inventory_content`).
"""

from __future__ import annotations

import io
import json
import tempfile
from contextlib import closing
from pathlib import PurePosixPath
from typing import Any

from workbench.model.code_reference import HIGH, CodeReference
from workbench.model.embedded_code import auto_map_references, metadata_references
from workbench.model.h5_reader import H5Attrs, read_h5_attrs
from workbench.model.keras_format import h5_lambda_offsets, keras_config_references
from workbench.model.pickles import analyse_pickle_bytes
from workbench.model.python_code import torchscript_issues
from workbench.model.safetensors_format import read_metadata
from workbench.model.savedmodel import read_graph_ops, read_keras_metadata, text_graph_ops
from workbench.textsafe import clean_data, replaced_reason

__all__ = ["carried_code", "config_references", "hdf5_references"]

#: Keras root attributes of an HDF5 file judged as Keras configs
_CONFIG_ATTRIBUTES = ("model_config", "training_config")
#: an HDF5 archive member is copied to an unnamed temporary file (outside the evidence) for the h5py child up to this
MAX_H5_MEMBER = 4 * 1024**3
_BLOCK = 1024 * 1024


def hdf5_references(ex: Any, src: Any, details: dict[str, Any]) -> list[CodeReference]:
    """An HDF5 file's Keras ``model_config`` and ``training_config`` read by the h5py child and judged as Keras
    configs (an archive member is first copied to an unnamed temporary file, up to :data:`MAX_H5_MEMBER`). A file
    the child cannot read (crash, timeout, not HDF5) is ``not analysed``; its raw bytes are then searched for a
    Lambda layer so that the reason to look is not lost."""
    attrs = _h5_attrs(ex, src)
    if attrs is None:
        return []
    if attrs.error is not None:
        ex._not_analysed(src, f"Keras config not examined: {attrs.error}")
        return _raw_lambdas(ex, src, details)
    if keras_version := attrs.attrs.get("keras_version"):
        details["keras_version"] = keras_version[:40]
    refs: list[CodeReference] = []
    for name in _CONFIG_ATTRIBUTES:
        text = attrs.attrs.get(name)
        if text is None:
            continue
        if name in attrs.cut:
            ex._unexamined(src, f"HDF5 attribute {name} longer than the {ex.limits.max_json_bytes}-byte cap: only its "
                           "start is searched for Lambda layers")  # fmt: skip
            refs += _lambda_hints(text.encode("utf-8", "replace"), f"HDF5 attribute {name}")
            continue
        doc = _json(ex, src, text, f"HDF5 attribute {name}")
        if doc is not None:
            capped: list[str] = []
            refs += [_labelled(r, f"HDF5 {name}") for r in keras_config_references(doc, capped=capped)]
            for note in capped:
                ex._unexamined(src, f"HDF5 {name}: {note}")
    _count(refs, details)
    return refs


def _h5_attrs(ex: Any, src: Any) -> H5Attrs | None:
    cap = ex.limits.max_json_bytes
    if src.member is None and src.seekable:
        with closing(src.opener()) as fh:
            try:
                fd = fh.fileno()
            except (OSError, io.UnsupportedOperation):
                fd = None
            if fd is not None:
                return read_h5_attrs(fd=fd, max_bytes=cap)
    if src.size > MAX_H5_MEMBER:
        ex._not_analysed(src, f"HDF5 member of {src.size} bytes, over the {MAX_H5_MEMBER}-byte cap for members "
                         "copied out to be read: its Keras config is not examined")  # fmt: skip
        return None
    with tempfile.TemporaryFile(prefix="workbench-h5-") as spool, closing(src.opener()) as fh:
        copied = 0
        while block := fh.read(min(_BLOCK, MAX_H5_MEMBER + 1 - copied)):
            spool.write(block)
            copied += len(block)
        if copied > MAX_H5_MEMBER:
            ex._not_analysed(src, f"HDF5 member inflates past the {MAX_H5_MEMBER}-byte cap: not examined")
            return None
        spool.flush()
        return read_h5_attrs(fd=spool.fileno(), max_bytes=cap)


def _raw_lambdas(ex: Any, src: Any, details: dict[str, Any]) -> list[CodeReference]:
    with closing(src.opener()) as fh:
        offsets = h5_lambda_offsets(fh, ex.limits.h5_scan_bytes)
    refs = [CodeReference("keras_lambda", HIGH, "HDF5 model config names a Lambda layer", offset=o) for o in offsets]
    _count(refs, details)
    return refs


def _lambda_hints(data: bytes, label: str) -> list[CodeReference]:
    offsets = h5_lambda_offsets(io.BytesIO(data), len(data))
    return [CodeReference("keras_lambda", HIGH, f"{label} names a Lambda layer", offset=o) for o in offsets]


def config_references(doc: Any, details: dict[str, Any], ex: Any = None, src: Any = None) -> list[CodeReference]:
    """``auto_map`` references and Keras layers and objects of a parsed JSON config (``config.json`` of a ``.keras``
    archive and any other); a walk stopped by its cap is recorded as unexamined when ``ex`` and ``src`` are given."""
    capped: list[str] = []
    refs = auto_map_references(doc) + keras_config_references(doc, capped=capped)
    for note in capped if ex is not None else ():
        ex._unexamined(src, note)
    _count(refs, details)
    if count := sum(r.kind == "auto_map" for r in refs):
        details["auto_map"] = count
    return refs


def carried_code(ex: Any, src: Any, kind: str, details: dict[str, Any]) -> list[CodeReference]:
    """Code in a file the other readers treat as data: safetensors metadata, TensorFlow graphs (``saved_model.pb``,
    ``keras_metadata.pb``, frozen ``*.pb`` graphs) and the ``code/`` sources of a TorchScript archive."""
    name = PurePosixPath(src.name).name
    if kind == "safetensors":
        return _safetensors(ex, src, details)
    if name.endswith(".pb") and kind in ("onnx", "unknown", "text", "tokenizer"):
        return _graph(ex, src, name, details)
    if name.endswith(".pbtxt") and kind == "text":
        return _text_graph(ex, src, details)
    member = "/" + (src.member or "").rsplit("!", 1)[-1]
    if src.context == "torchscript" and "/code/" in member and name.endswith(".py"):
        return _torchscript(ex, src, details)
    return []


def _safetensors(ex: Any, src: Any, details: dict[str, Any]) -> list[CodeReference]:
    with closing(src.opener()) as fh:
        metadata, problem = read_metadata(fh, src.size)
    if problem is not None:
        ex._unexamined(src, f"safetensors header: {problem}: its metadata is not examined")
        return []
    if metadata:
        details["metadata_keys"] = len(metadata)
    scan = metadata_references(metadata)
    for reason in scan.cut:
        ex._unexamined(src, f"safetensors {reason}")
    for key, data in scan.pickles:
        where = f"__metadata__[{key[:100]!r}]"
        member = f"{src.member}!{where}" if src.member else where
        report = analyse_pickle_bytes(data, member=member, policy=ex.policy, limits=ex.limits)
        ex.inv.pickles.append((src.path, report))
    return scan.refs


def _graph(ex: Any, src: Any, name: str, details: dict[str, Any]) -> list[CodeReference]:
    saved_model = name == "saved_model.pb"
    with closing(src.opener()) as fh:
        if name == "keras_metadata.pb":
            scan = read_keras_metadata(fh, src.size, seekable=src.seekable)
        else:
            scan = read_graph_ops(fh, src.size, seekable=src.seekable, saved_model=saved_model)
    what = "Keras metadata" if name == "keras_metadata.pb" else "TensorFlow graph"
    if not saved_model and name != "keras_metadata.pb" and (scan.error or not scan.nodes):
        return []  # not a GraphDef: another protobuf named *.pb
    details["graph_nodes" if what != "Keras metadata" else "saved_objects"] = scan.nodes
    if scan.functions:
        details["graph_functions"] = scan.functions
    if scan.error:
        ex._unexamined(src, f"{what}: {scan.error}: the rest is not examined")
    if scan.capped:
        ex._unexamined(src, f"{what}: {scan.capped}")
    refs = list(scan.refs)
    if scan.more:
        refs.append(CodeReference("tf_graph_op", HIGH, f"and {scan.more} more nodes with such ops"))
    _count(refs, details)
    return refs


def _text_graph(ex: Any, src: Any, details: dict[str, Any]) -> list[CodeReference]:
    data = ex._read_all(src, ex.limits.max_json_bytes)
    if data is None:
        return []
    scan = text_graph_ops(data.decode("utf-8", "replace"))
    if scan.nodes:
        details["graph_nodes"] = scan.nodes
    if scan.capped:
        ex._unexamined(src, f"TensorFlow graph: {scan.capped}")
    return scan.refs + ([CodeReference("tf_graph_op", HIGH, f"and {scan.more} more nodes with such ops")]
                        if scan.more else [])  # fmt: skip


def _torchscript(ex: Any, src: Any, details: dict[str, Any]) -> list[CodeReference]:
    data = ex._read_all(src, ex.limits.max_text_bytes)
    if data is None:
        return []
    capped: list[str] = []
    issues = torchscript_issues(data.decode("utf-8", "replace"), capped)
    for note in capped:
        ex._unexamined(src, f"TorchScript source: {note}")
    if issues is None:
        ex._unexamined(src, "TorchScript source does not parse as Python: not judged")
        return []
    details["torchscript_issues"] = len(issues)
    return [CodeReference("torchscript_code", i.severity, f"TorchScript source: {i.what}", line=i.line) for i in issues]


# ---------------------------------------------------------------------------------------------------- helpers
def _json(ex: Any, src: Any, text: str, label: str) -> Any:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        ex._unexamined(src, f"{label} is not JSON ({str(exc)[:200]}): not judged")
        return None
    doc, changed = clean_data(doc)
    if changed:
        ex._warn(src, replaced_reason(label))
    return doc


def _labelled(ref: CodeReference, label: str) -> CodeReference:
    return CodeReference(ref.kind, ref.severity, f"{label}: {ref.summary}", ref.line, ref.offset)


def _count(refs: list[CodeReference], details: dict[str, Any]) -> None:
    if count := sum(r.kind == "keras_lambda" for r in refs):
        details["lambda_layers"] = details.get("lambda_layers", 0) + count
