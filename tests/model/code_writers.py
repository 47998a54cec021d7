"""Writers of the code-carrying files the tests need: protobuf (SavedModel graphs, Keras metadata) encoded by hand,
safetensors with metadata, TorchScript zips with a ``code/`` source."""

from __future__ import annotations

import json
import struct
import zipfile
from io import BytesIO


def varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def node(name: str, op: str, **attrs: str | list[str]) -> bytes:
    body = field(1, name) + field(2, op) + field(3, "input:0")
    for key, value in attrs.items():
        attr_value = field(1, b"".join(field(2, v) for v in value)) if isinstance(value, list) else field(2, value)
        body += field(5, field(1, key) + field(2, attr_value))
    return body


def saved_model(graph_nodes: list[bytes], functions: dict[str, list[bytes]] | None = None) -> bytes:
    graph = b"".join(field(1, n) for n in graph_nodes)
    library = b"".join(
        field(1, field(1, field(1, name)) + b"".join(field(3, n) for n in nodes))
        for name, nodes in (functions or {}).items()
    )
    graph += field(2, library) if library else b""
    meta_graph = field(1, field(1, "serve")) + field(2, graph)
    return varint(1 << 3) + varint(1) + field(2, meta_graph)


def safetensors(metadata: dict[str, str]) -> bytes:
    """One F32 tensor and ``metadata`` as ``__metadata__``."""
    text = json.dumps({"__metadata__": metadata, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
    raw = text.encode() + b" " * (-len(text) % 8)
    return struct.pack("<Q", len(raw)) + raw + struct.pack("<f", 1.0)


def torchscript_zip(source: str, name: str = "m") -> bytes:
    """A TorchScript archive: inert ``data.pkl`` and ``constants.pkl``, ``code/__torch__.py`` holding ``source``."""
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{name}/data.pkl", b"\x80\x02}.")
        zf.writestr(f"{name}/code/__torch__.py", source)
        zf.writestr(f"{name}/constants.pkl", b"\x80\x02).")
        zf.writestr(f"{name}/version", b"3\n")
    return buf.getvalue()
