"""Redaction of secrets in any text the workbench writes (JSON, report, timeline, comms).

Every credential rule (``category: secret_exposed``) captures its secret in a group named ``secret``; the redactor
replaces that group with its first ``keep`` characters and ``…[redacted]``, e.g. ``hf_Ab…[redacted]``. At most a
third of a secret is ever kept. The body of a PEM private-key block (``-----BEGIN … PRIVATE KEY-----`` up to its
``-----END`` line, also when written with ``\\n`` escapes inside JSON) is redacted line by line. Redaction is
idempotent: redacting redacted text changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.rulepack.rules import Rule

__all__ = ["MARK", "Redactor", "mask", "redact", "redact_data", "redact_lines"]

MARK = "…[redacted]"
#: the mark as JSON with ASCII escapes and as Markdown escaping write it: already-redacted text too
_MARKS = (MARK, "\\u2026[redacted]", "…\\[redacted\\]")
_KEY_BLOCK = re.compile(
    r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)"
    r"((?:(?!-----END)(?:\\[nr]|[A-Za-z0-9+/=:,.\- \t\r\n]))*)"
)
_KEY_RUN = re.compile(r"(?<!\\)[A-Za-z0-9+/=]{8,}")
#: A context line that is nothing but key material (the block's BEGIN line may be outside the context window).
_BARE_KEY_LINE = re.compile(
    r"^(?P<prefix>\[?\d{4}-\d{2}-\d{2}[T ][\d:.,]+(?:Z|[+-][\d:]+)?\]?(?: \d\d[OE]\+?)?\s*)?"
    r"(?P<body>(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*\d)[A-Za-z0-9+/]{40,}={0,2})\s*$"
)


def mask(secret: str, keep: int) -> str:
    """``secret`` shortened to at most ``keep`` characters (never more than a third of it) plus ``…[redacted]``."""
    return secret[: min(keep, len(secret) // 3)] + MARK


class Redactor:
    """Applies the credential rules of a rule set to text.

    Args:
        rules: rules to use; only credential rules (``secret_exposed``) are applied.
    """

    def __init__(self, rules: Iterable[Rule], *, backend: str = "auto") -> None:
        from workbench.rulepack.matchers import Pattern, make_finder

        secret = [r for r in rules if r.is_secret]
        self._rules = [(r.text_regex, r.keep) for r in secret]
        # a multi-pattern prefilter says which rules may match (most text holds no secret); None: try them all
        patterns = tuple(Pattern(r.pattern, r.ignore_case, r.source, r.id) for r in secret)
        self._finder = make_finder(patterns, backend) if patterns and backend != "none" else None

    def redact(self, text: str) -> str:
        """``text`` with every secret a credential rule matches, and private-key bodies, replaced.

        Every rule is matched against the original text and the secrets' spans are merged before anything is
        replaced, so that two secrets written next to each other (or overlapping matches of two rules) are both
        covered: one rule's replacement never hides the next secret from another rule.
        """
        if self._rules:
            which = self._finder.ids(text.encode("utf-8", "replace")) if self._finder is not None else None
            spans: list[tuple[int, int, int]] = []
            for index in range(len(self._rules)) if which is None else sorted(which):  # most text: no rule to try
                regex, keep = self._rules[index]
                spans += [(m.start("secret"), m.end("secret"), keep) for m in regex.finditer(text)
                          if m.group("secret") and not _marked(m.group("secret"))]  # fmt: skip
            if spans:
                text = _mask_spans(text, spans)
        if "PRIVATE KEY" in text:
            text = _KEY_BLOCK.sub(_replace_key_body, text)
        return text

    def redact_lines(self, lines: Sequence[str]) -> list[str]:
        """Consecutive lines redacted together (a key block spanning them is found); same number of lines.

        Lines consisting only of long mixed-case base64 (bare key material whose BEGIN line is out of view) are
        replaced too.
        """
        if not lines:
            return []
        out = self.redact("\n".join(lines)).split("\n")
        return [_bare_key(line) if len(line) >= 40 else line for line in out]

    def redact_data(self, data: Any) -> Any:
        """A copy of a JSON-like structure (dicts, lists, tuples, scalars) with every string redacted.

        Prefer this to redacting serialised JSON: a secret cut out of an encoded string could take quotes with it.
        """
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact(k) if isinstance(k, str) else k: self.redact_data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return type(data)(self.redact_data(v) for v in data)
        return data


def _marked(secret: str) -> bool:
    """Whether a match is text redacted already (the mark, or the mark as escaped JSON writes it)."""
    return any(m in secret for m in _MARKS)


def _mask_spans(text: str, spans: list[tuple[int, int, int]]) -> str:
    """``text`` with each secret span masked; overlapping or touching spans are masked as one (smallest keep)."""
    merged: list[list[int]] = []
    for start, end, keep in sorted(spans):
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            last[1], last[2] = max(last[1], end), min(last[2], keep)
        else:
            merged.append([start, end, keep])
    out, pos = [], 0
    for start, end, keep in merged:
        out += [text[pos:start], mask(text[start:end], keep)]
        pos = end
    return "".join(out) + text[pos:]


def _bare_key(line: str) -> str:
    last = line.rstrip()
    last = last[last.rfind(" ") + 1 :].rstrip("=")
    if len(last) < 40 or not last.isascii() or not last.replace("+", "a").replace("/", "a").isalnum():
        return line
    m = _BARE_KEY_LINE.match(line)
    return line if m is None else (m.group("prefix") or "") + MARK


def _replace_key_body(m: re.Match[str]) -> str:
    return m.group(1) + _KEY_RUN.sub(MARK, m.group(2))


@cache
def _default() -> Redactor:
    from workbench.rulepack.rules import builtin_rules

    return Redactor(builtin_rules())


def redact(text: str) -> str:
    """``text`` with every secret matched by a shipped credential rule redacted (e.g. ``hf_Ab…[redacted]``).

    Apply it to every string the workbench writes. For rule sets extended with ``--rules``, use
    ``Redactor(ruleset).redact``.
    """
    return _default().redact(text)


def redact_lines(lines: Sequence[str]) -> list[str]:
    """:meth:`Redactor.redact_lines` with the shipped credential rules."""
    return _default().redact_lines(lines)


def redact_data(data: Any) -> Any:
    """:meth:`Redactor.redact_data` with the shipped credential rules (for findings.json, timeline rows, etc.)."""
    return _default().redact_data(data)
