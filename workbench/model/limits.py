"""Caps that keep a scan of hostile artefacts bounded in time and memory."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScanLimits"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Size and depth caps of a model scan; a file or member beyond a cap is reported, not read.

    Attributes:
        sniff_bytes: bytes read from the start of a file to classify it.
        pickle_probe_bytes: byte budget of the genops probe that recognises protocol 0/1 pickles.
        max_pickle_bytes: pickle streams are analysed up to this many bytes per file or member.
        max_opcodes: opcodes analysed per file or member.
        max_streams: pickle streams analysed per file or member.
        max_line_bytes: longest newline-terminated argument (protocol 0 opcodes) read.
        skip_arg_bytes: byte arguments at least this long are skipped, not held in memory.
        max_members: archive members listed per archive.
        max_inflated_bytes: total declared inflated size of an archive's compressed members that is still read.
        max_member_ratio: compression ratio above which a member larger than 1 MiB is a decompression bomb.
        max_depth: archives nested deeper than this are listed but not opened.
        max_json_bytes: JSON configs larger than this are not parsed.
        max_text_bytes: templates, source and text larger than this are not analysed.
        gguf_max_kv: GGUF metadata entries read.
        gguf_max_string: longest GGUF metadata string kept.
        gguf_max_array: longest GGUF metadata array walked.
        gguf_max_header_bytes: GGUF metadata bytes walked.
        h5_scan_bytes: bytes of an HDF5 file searched for a Keras model config.
        picklescan_max_bytes: files larger than this are not handed to picklescan (it keeps every opcode in memory).
        max_in_memory_bytes: compressed nested archives and 7z members are read into memory up to this total.
        crc_check_bytes: archive members are inflated and CRC-checked up to this many bytes per archive.
        max_late_pickles: members named like a pickle (``data.pkl``, ``*.pkl``) past ``max_members`` that are still
            examined (a loader finds them by name wherever they are in the central directory).
        max_file_members: archive members examined per top-level file, all nesting levels together.
        max_central_bytes: a zip whose central directory is larger is not listed (every entry would be held in
            memory, about 370 bytes each).
        bomb_scan_bytes: members flagged as decompression bombs are still examined, inflated up to this many bytes
            per top-level file, all such members together (the rest is unexamined).
        max_npy_header_bytes: longest ``.npy`` header read (numpy ignores its own 10 KiB limit when pickles are allowed,
            so a longer header is still read up to here; past it the file is partially analysed).
    """

    sniff_bytes: int = 64 * 1024
    pickle_probe_bytes: int = 64 * 1024
    max_pickle_bytes: int = 4096 * MIB
    max_opcodes: int = 20_000_000
    max_streams: int = 64
    max_line_bytes: int = MIB
    skip_arg_bytes: int = 8 * MIB
    max_members: int = 10_000
    max_inflated_bytes: int = 8192 * MIB
    max_member_ratio: int = 200
    max_depth: int = 4
    max_json_bytes: int = 32 * MIB
    max_text_bytes: int = 4 * MIB
    gguf_max_kv: int = 100_000
    gguf_max_string: int = MIB
    gguf_max_array: int = 10_000_000
    gguf_max_header_bytes: int = 512 * MIB
    h5_scan_bytes: int = 64 * MIB
    picklescan_max_bytes: int = 1024 * MIB
    max_in_memory_bytes: int = 256 * MIB
    crc_check_bytes: int = 4096 * MIB
    max_npy_header_bytes: int = 16 * MIB
    max_late_pickles: int = 64
    max_file_members: int = 100_000
    max_central_bytes: int = 64 * MIB
    bomb_scan_bytes: int = 1024 * MIB
