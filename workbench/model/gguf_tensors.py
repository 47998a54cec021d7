"""GGUF files as tensor sources: tensor infos located in the data section, quantised rows as blocks.

The infos come from :func:`workbench.model.gguf_meta.read_gguf_layout` (a strict, capped walk of the header; no
``gguf`` package, nothing imported from the file). Each tensor becomes a
:class:`~workbench.model.tensor_io.TensorSource` of its GGML type: shapes are GGUF's ``ne`` reversed (rows first),
a quantised row is compared block by block (:mod:`workbench.model.ggml_types`: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 are
dequantised for statistics, the other types give block-level change counts). A tensor of an unknown type, whose row
is not a whole number of blocks, or whose bytes leave the file is listed in ``unexamined``.
"""

from __future__ import annotations

import math
from pathlib import Path

from workbench import safeio
from workbench.model.ggml_types import GGML_TYPES
from workbench.model.gguf_meta import GgufError, read_gguf_layout
from workbench.model.tensor_io import FileTensors, TensorSource
from workbench.records import EvidenceWarning
from workbench.textsafe import clean_text

__all__ = ["read_gguf"]


def read_gguf(path: Path, display: str) -> FileTensors:
    """The tensors of a GGUF file (format ``gguf``); a header that cannot be read leaves it ``unexamined``."""
    out = FileTensors(path, display, "gguf")
    try:
        with safeio.open_evidence(path) as fh:
            size = path.stat().st_size
            layout = read_gguf_layout(fh, size)
    except (OSError, GgufError) as exc:
        out.not_compared("GGUF tensors", str(exc))
        return out
    seen: set[str] = set()
    for info in layout.tensors:
        name, changed = clean_text(info.name)
        if changed:
            out.warnings.append(EvidenceWarning(display, None, f"tensor name {name!r} is not valid UTF-8"))
        gtype = GGML_TYPES.get(info.ggml_type)
        shape = tuple(reversed(info.dims))
        if name in seen:
            out.not_compared(f"tensor {name}", "the name appears twice in the tensor infos (llama.cpp refuses it)")
            continue
        seen.add(name)
        if gtype is None:
            out.not_compared(f"tensor {name}", f"GGML type {info.ggml_type} unknown", name)
            continue
        numel = math.prod(shape)
        if gtype.quantized and (len(shape) < 2 or not info.dims or info.dims[0] % gtype.block_size):
            out.not_compared(f"tensor {name}", f"{gtype.name} rows of {info.dims[:1]} elements are not whole blocks "
                             f"of {gtype.block_size}, or the tensor has one dimension", name)  # fmt: skip
            continue
        start = layout.data_start + info.offset
        nbytes = numel // gtype.block_size * gtype.type_size
        if start + nbytes > size:
            why = f"its {nbytes} bytes at offset {start} run past the end of the file"
            out.not_compared(f"tensor {name}", why, name)
            continue
        if info.offset % layout.alignment:
            out.warnings.append(EvidenceWarning(display, None, f"tensor {name!r} at offset {info.offset} is not "
                                                f"aligned to {layout.alignment} bytes"))  # fmt: skip
        out.tensors.append(TensorSource(name, gtype.name, shape, path, start, display))
    return out
