"""Keras model configs judged without Keras: ``Lambda`` layers, ``TFOpLambda`` calls, custom objects and modules.

A config is the parsed JSON of ``config.json`` (``.keras`` archives), the ``model_config`` attribute of an HDF5 file
(read by :mod:`workbench.model.h5_reader`), or the per-layer metadata of ``keras_metadata.pb`` (SavedModel). It is
parsed as JSON (so ``"\\u004cambda"`` is ``Lambda``) and walked iteratively.

* ``Lambda``: Keras 2 stores the function as base64 of marshalled bytecode (``function: [code, defaults,
  closure]``, ``function_type: "lambda"``) or as a name in a module (``function_type: "function"``); Keras 3 as
  ``{"class_name": "__lambda__", "config": {"code": …}}``. Loading runs it. The bytecode is never unmarshalled:
  the identifiers it names (``os``, ``system`` …) are read from its bytes.
* ``TFOpLambda`` / ``SlicingOpLambda``: a TensorFlow API call by name; file, Python and checkpoint APIs are flagged.
* Keras 3 objects name their ``module``, which loading imports: a module outside Keras is code from elsewhere.
  A ``registered_name`` of a package other than Keras needs code registered by the loading program.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, BinaryIO

from workbench.model.code_reference import HIGH, MEDIUM, CodeReference
from workbench.model.python_code import DANGEROUS_CALLS, DANGEROUS_MODULES

__all__ = ["h5_lambda_offsets", "keras_config_references", "keras_lambda_layers"]

#: module prefixes Keras itself (and its official libraries) serialize
KERAS_MODULES = (
    "keras",
    "tf_keras",
    "keras_hub",
    "keras_nlp",
    "keras_cv",
    "tensorflow.keras",
    "tensorflow.python.keras",
)
#: TensorFlow API names a TFOpLambda may call that touch files, run Python or write checkpoints
_TF_DANGEROUS_API = re.compile(
    r"^(io\.|raw_ops\.|compat\.v1\.(py_func|io|gfile|train|write_file|read_file)|py_function$|numpy_function$|"
    r"saved_model\.|summary\.|train\.|data\.experimental\.(save|load|snapshot)|debugging\.experimental|strings\.format"
    r"|print$|load_op_library$|load_library)"
)
#: Keras functions reachable through a keras module that fetch files or switch safety off
_KERAS_DANGEROUS = {"get_file", "enable_unsafe_deserialization", "load_model"}
_IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{1,63}")
_LAMBDA_BYTES = re.compile(rb'"class_name"\s*:\s*"Lambda"')
_WATCHED = DANGEROUS_MODULES | DANGEROUS_CALLS | {
    "system", "popen", "getattr", "spawn", "check_output", "Popen", "run", "call", "remove", "unlink", "rmtree",
    "urlopen", "connect",
}  # fmt: skip
MAX_NODES = 200_000
MAX_CODE_BYTES = 1024 * 1024


def keras_config_references(
    config: Any, max_nodes: int = MAX_NODES, capped: list[str] | None = None
) -> list[CodeReference]:
    """Lambda layers, TFOpLambda calls of file or Python APIs, and custom modules and objects in a Keras config.

    Args:
        config: the parsed JSON; max_nodes: values walked; capped: receives a note when a cap stopped the walk.

    Returns:
        ``keras_lambda`` references (high) naming each Lambda layer and what its code names, and
        ``keras_custom_object`` references (high for a module outside Keras or a dangerous call, medium for a
        registered custom object); at most 100.
    """
    refs: list[CodeReference] = []
    stack, seen = [config], 0
    while stack and seen < max_nodes and len(refs) < 100:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            ref = _judge(node)
            if ref is not None and ref not in refs:
                refs.append(ref)
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    if stack and capped is not None:
        capped.append(f"Keras config walk stopped after {seen} values and {len(refs)} references: the rest not judged")
    return refs


def keras_lambda_layers(config: Any, max_nodes: int = MAX_NODES) -> list[CodeReference]:
    """The ``keras_lambda`` references of :func:`keras_config_references` only (one per Lambda layer)."""
    return [r for r in keras_config_references(config, max_nodes) if r.kind == "keras_lambda"]


def _judge(node: dict[str, Any]) -> CodeReference | None:
    class_name = node.get("class_name")
    inner = node.get("config") if isinstance(node.get("config"), dict) else {}
    name = str(inner.get("name") or node.get("name") or "?")[:100]
    if class_name == "Lambda":
        return CodeReference("keras_lambda", HIGH, f"Lambda layer {name!r} carries Python code run on load"
                             + _lambda_code(inner))  # fmt: skip
    if class_name in ("TFOpLambda", "SlicingOpLambda"):
        function = str(inner.get("function") or "")[:120]
        if _TF_DANGEROUS_API.match(function):
            return CodeReference("keras_custom_object", HIGH, f"{class_name} layer {name!r} calls tf.{function} on "
                                 "load (a file, Python or checkpoint API)")  # fmt: skip
        return None
    module = node.get("module")
    if isinstance(module, str) and isinstance(class_name, str):
        config = node.get("config")
        target = (
            f"{module}.{config}" if class_name == "function" and isinstance(config, str) else f"{module}.{class_name}"
        )
        if not module.startswith(KERAS_MODULES):
            severity = HIGH
            why = "imported on load" + (" (a process, file or interpreter module)" if module.split(".")[0] in
                                        DANGEROUS_MODULES else "")  # fmt: skip
            return CodeReference("keras_custom_object", severity, f"object {target[:160]!r}: module {module[:100]!r} "
                                 f"{why}")  # fmt: skip
        leaf = target.rsplit(".", 1)[-1]
        if leaf in _KERAS_DANGEROUS:
            return CodeReference("keras_custom_object", HIGH, f"object {target[:160]!r} fetches files or disables "
                                 "safe loading")  # fmt: skip
    registered = node.get("registered_name")
    if isinstance(registered, str) and ">" in registered and not registered.startswith(KERAS_MODULES):
        return CodeReference("keras_custom_object", MEDIUM, f"custom object {registered[:120]!r} (its code must be "
                             "registered by the program that loads the model)")  # fmt: skip
    return None


def _lambda_code(config: dict[str, Any]) -> str:
    """What a Lambda's function is: a module function, or the identifiers its marshalled bytecode names."""
    function = config.get("function")
    if config.get("function_type") == "function" and isinstance(function, str):
        module = config.get("module")
        return f": function {module}.{function}"[:200] if isinstance(module, str) else f": function {function}"[:200]
    code = None
    if isinstance(function, list) and function and isinstance(function[0], str):
        code = function[0]
    elif isinstance(function, dict):
        fconf = function.get("config")
        if (
            function.get("class_name") == "__lambda__"
            and isinstance(fconf, dict)
            and isinstance(fconf.get("code"), str)
        ):
            code = fconf["code"]
        elif function.get("class_name") == "function" and isinstance(fconf, str):
            return f": function {function.get('module')}.{fconf}"[:200]
    if code is None:
        return ""
    try:
        raw = base64.b64decode(code[: MAX_CODE_BYTES * 2], validate=False)
    except (binascii.Error, ValueError):
        return f" ({len(code)} characters of code that are not base64)"
    names = []
    for match in _IDENT.finditer(raw[:MAX_CODE_BYTES]):
        word = match.group(0).decode("ascii")
        if word in _WATCHED and word not in names:
            names.append(word)
    shown = f"; its bytecode names {', '.join(names[:8])}" if names else ""
    return f" ({len(raw)} bytes of marshalled bytecode, never loaded{shown})"


def h5_lambda_offsets(fh: BinaryIO, limit: int, chunk: int = 1024 * 1024) -> list[int]:
    """Byte offsets of ``"class_name": "Lambda"`` in raw bytes (an HDF5 file read without parsing it).

    Args:
        fh: the file, at offset 0; limit: bytes searched.

    Returns:
        Up to 20 offsets.
    """
    found: list[int] = []
    tail, base = b"", 0
    while base < limit and len(found) < 20:
        data = fh.read(min(chunk, limit - base))
        if not data:
            break
        window = tail + data
        for match in _LAMBDA_BYTES.finditer(window):
            offset = base - len(tail) + match.start()
            if offset not in found:
                found.append(offset)
        tail = window[-64:]
        base += len(data)
    return found[:20]
