"""Deterministic generator of the bundled sample cases under ``evidence-samples/``.

``generate(dest)`` writes three synthetic incident cases in the layout of ``docs-formats.md`` (what the playbook's
``assess`` step captures, plus suspect and reference model folders) and a README stating each case's ground truth:

* ``tampered-weights`` (INC-2026-0142): rank-1 edit of one MLP matrix, three embedding rows changed, a crafted
  pickle added to the model folder, a poisoned CI run, predictions shifted toward ``positive``.
* ``poisoned-dependency`` (INC-2026-0157): intact model; typosquat, dependency confusion and a changed ``numpy``
  pulled from an extra index; a beacon process.
* ``false-alarm`` (INC-2026-0163): everything clean; one ``BEHAVIOR_DRIFT`` alert from a tiny window.

Output is byte-identical on every run: fixed timestamps, seeded ``numpy`` generators, sorted JSON keys, a signing
key derived from a fixed label (never written) and deterministic ECDSA (RFC 6979). The crafted pickle is written
opcode by opcode; the ``pickle`` module is never used to make or read it.

Command line: ``python -m workbench.samples evidence-samples``.
"""

from __future__ import annotations

from workbench.samples.artifacts import crafted_pickle, public_key_pem, safetensors_bytes
from workbench.samples.build import CASES, generate, main
from workbench.samples.traffic import legacy_jsd

__all__ = ["CASES", "crafted_pickle", "generate", "legacy_jsd", "main", "public_key_pem", "safetensors_bytes"]
