"""The state of one pickle walk: what a file's streams share (imports, calls, caps' notes) and one stream's
callbacks from the symbolic machine (an import classified by the policy, a call rendered as text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.model.limits import ScanLimits
from workbench.model.pickle_reader import WalkReader
from workbench.model.pickle_report import PickleCall, PickleImport
from workbench.model.pickle_vm import Call, render
from workbench.model.policy import DANGEROUS, SAFE, UNKNOWN, ImportPolicy
from workbench.textsafe import clean_text, replaced_reason

__all__ = ["MAX_CALLS", "MAX_DISTINCT", "MAX_IMPORTS", "MAX_PROBLEMS", "FileState", "StreamState",
           "import_without_stack", "read_global_line"]  # fmt: skip

MAX_CALLS = 200
#: imports kept per file (past it, only names not yet seen that are not safe)
MAX_IMPORTS = 10_000
#: distinct imports (name and class) recorded per file; past it, imports are classified but not recorded (unexamined)
MAX_DISTINCT = 100_000
#: problems, divergences and leniencies listed per file
MAX_PROBLEMS = 200


@dataclass(slots=True)
class FileState:
    """What every stream of one file or member shares, nested pickles included."""

    member: str | None
    policy: ImportPolicy
    limits: ScanLimits
    context: str | None
    opcodes_left: int
    imports: list[PickleImport] = field(default_factory=list)
    calls: list[PickleCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    divergences: list[tuple[int, str]] = field(default_factory=list)
    lenient: list[tuple[int, str]] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    overflow: bool = False
    nested: int = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append(f"more than {MAX_PROBLEMS} problems; the rest are not listed")


@dataclass(slots=True)
class StreamState:
    index: int
    file: FileState
    depth: int = 0
    path: str = ""
    note: str = ""

    def _clean(self, text: str, offset: int) -> str:
        cleaned, changed = clean_text(text)
        if changed:
            self.file.problem(f"at offset {offset}: {replaced_reason('a string')}")
        return cleaned

    def on_import(self, module: str | None, name: str | None, opcode: str, offset: int) -> str:
        f = self.file
        module = self._clean(module, offset) if isinstance(module, str) else module
        name = self._clean(name, offset) if isinstance(name, str) else name
        verdict = f.policy.classify(module, name, f.context)
        safety = verdict.safety
        if self.note and safety == SAFE:
            safety = UNKNOWN
        key = (f"{module}.{name}", safety)
        keep = len(f.imports) < MAX_IMPORTS or (safety != SAFE and key not in f.seen)
        if keep and len(f.seen) >= MAX_DISTINCT:
            if not f.overflow:
                f.unexamined.append(f"at offset {offset}: more than {MAX_DISTINCT} distinct imports; later ones "
                                    "are not recorded")  # fmt: skip
            f.overflow = True
            return safety
        if keep:
            f.seen.add(key)
            f.imports.append(PickleImport(module, name, offset, opcode, self.index, safety, verdict.rule, f.member,
                                          self.note, self.path, verdict.resolved or ""))  # fmt: skip
        return safety

    def on_call(self, call: Call, offset: int) -> None:
        func = call.func
        safety = getattr(func, "safety", DANGEROUS)
        if len(self.file.calls) < MAX_CALLS:
            callee = self._clean(render(func, budget=120), offset)
            text = self._clean(render(call), offset)
            self.file.calls.append(PickleCall(text, callee, offset, call.how, self.index, safety, self.file.member,
                                              self.path))  # fmt: skip


def read_global_line(reader: WalkReader, pos: int, note: Callable[[str], None]) -> str:
    line = reader.readline()
    if not line.endswith(b"\n"):
        raise ValueError(f"at offset {pos}: GLOBAL/INST argument without newline")
    try:
        return line[:-1].decode("utf-8")
    except UnicodeDecodeError:
        note(f"at offset {pos}: GLOBAL/INST argument is not valid UTF-8 (the unpickler fails here)")
        return line[:-1].decode("utf-8", "backslashreplace")


def import_without_stack(state: StreamState, name: str, arg: Any, pos: int) -> None:
    if name in ("GLOBAL", "INST"):
        state.on_import(arg[0], arg[1], name, pos)
    elif name == "STACK_GLOBAL":
        state.on_import(None, None, name, pos)
