"""Loader for ``frozen_deps.txt``: ``pip freeze`` output (pins, direct URLs, editables, options, comments).

Requirements files in the same syntax (``>=`` ranges, bare names, markers, ``--hash`` continuations as written
by pip-compile) load too, so a baseline ``requirements.txt`` can be compared with the frozen state.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

from workbench.errors import MalformedEvidence
from workbench.evidence.base import LoadContext, Loaded, Loader, is_regular_file, iter_lines, sniff_lines
from workbench.records import EvidenceWarning

__all__ = ["FrozenDepsLoader", "normalize_name"]

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_OP = r"(?:===|==|~=|!=|<=|>=|<|>)"
#: ``name[extras] <spec>, <spec> ; marker`` (spec optional: a bare name).
_REQ = re.compile(
    rf"^(?P<name>{_NAME})\s*(?:\[[^\]]*\])?\s*(?P<spec>{_OP}\s*[^\s,;]+(?:\s*,\s*{_OP}\s*[^\s,;]+)*)?\s*(?:;.*)?$"
)
_EXACT = re.compile(r"^(?P<op>===|==)\s*(?P<version>[^\s,;]+)$")
_URL = re.compile(rf"^(?P<name>{_NAME})\s*(?:\[[^\]]*\])?\s*@\s*(?P<url>\S+)(?:\s+;.*)?$")
_EDITABLE = re.compile(r"^(?:-e|--editable)(?:\s+|=)(?P<target>\S.*)$")
_EGG = re.compile(rf"[#&]egg=(?P<name>{_NAME})")
#: pip's comment before an editable without VCS: ``# Editable install with no version control (pkg==1.0)``.
_EDITABLE_NOTE = re.compile(rf"^#\s*Editable .*\((?P<name>{_NAME})==(?P<version>[^)\s]+)\)")
_OPTION = re.compile(
    r"^(?P<opt>-i|--index-url|--extra-index-url|-f|--find-links|--trusted-host|--pre|--no-index|-r|--requirement"
    r"|-c|--constraint|--no-binary|--only-binary|--prefer-binary|--require-hashes)(?:\s+|=|$)(?P<val>.*)$"
)
_HASH = re.compile(r"\s*--hash[=\s]\S+")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!*-]*$")
_NAMES = re.compile(r"^(frozen_deps|requirements|constraints|pip[-_]?freeze|freeze)([._-][\w.-]*)?\.txt$", re.I)


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name: lower case, runs of ``-_.`` replaced by one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _redact(url: str) -> tuple[str, bool]:
    """Replace a password or token in a URL's user info by ``***``; returns the URL and whether it changed.

    A short user name alone (``git@``) is kept; a long one (``ghp_...@``) is taken for a token.
    """
    if "://" not in url:
        return url, False
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, False
    if "@" not in parts.netloc:
        return url, False
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    if has_password:
        userinfo = f"{user}:***"
    elif len(user) > 20:
        userinfo = "***"
    else:
        return url, False
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}")), True


def _url_path(url: str) -> str:
    """The path part of a URL or a plain path; ``""`` when the URL cannot be split."""
    try:
        return urlsplit(url.split("#", 1)[0]).path
    except ValueError:
        return ""


def _split_vcs_rev(url: str) -> str | None:
    """``git+https://host/repo.git@v1.2#egg=x`` -> ``v1.2``."""
    if not re.match(r"^(git|hg|svn|bzr)\+", url):
        return None
    path = _url_path(url.split("+", 1)[1])
    return (unquote(path.rsplit("@", 1)[1]) or None) if "@" in path else None


class FrozenDepsLoader(Loader):
    """Installed Python packages as captured by ``pip freeze``.

    Understands ``name==ver``, ``name===ver``, ``name @ url`` (``file://``, ``git+https://...@rev``, archives),
    ``-e path-or-vcs``, comments, blank lines and pip options. ``-i``/``--index-url``/``--extra-index-url``
    go to ``meta["index_urls"]``, other options to ``meta["options"]``. Passwords or tokens in URLs are
    replaced by ``***`` (lines listed in ``meta["redacted_lines"]``).

    Columns:
        line (int): 1-based line number.
        name (str): PEP 503 normalised name (``zope-interface``).
        raw_name (str): the name as written (``zope.interface``).
        version (str): exact version of a ``==``/``===`` pin; null for ranges, bare names, URLs and editables
            (a version in a wheel's file name proves nothing).
        operator (str): ``==``, ``===``, ``@`` (direct URL), ``-e`` (editable), the first operator of a range
            (``>=``...), or null for a bare name.
        specifier (str): the version specifier as written without spaces (``==1.26.4``, ``>=1.26,<2``), or null.
        url (str): the direct URL or editable target, credentials redacted.
        revision (str): VCS revision after ``@`` in a ``git+``/``hg+`` URL.
        editable (bool): installed with ``-e``.
    """

    name: ClassVar[str] = "frozen_deps"
    columns: ClassVar[dict[str, str]] = {
        "line": "int",
        "name": "str",
        "raw_name": "str",
        "version": "str",
        "operator": "str",
        "specifier": "str",
        "url": "str",
        "revision": "str",
        "editable": "bool",
    }

    def detect(self, path: Path) -> bool:
        """A requirements-style name, or a ``.txt`` whose first lines are mostly pins / direct URLs / editables.

        Bare names count towards "mostly" but a file of bare words alone is not claimed.
        """
        if not is_regular_file(path) or path.suffix.lower() not in {".txt", ".in", ""}:
            return False
        lines = [_HASH.sub("", s).rstrip("\\ ") for s in sniff_lines(path) if not s.startswith(("#", "--hash"))]
        if not lines:
            return bool(_NAMES.match(path.name))
        strong = weak = 0
        for line in lines:
            m = _REQ.match(line)
            if (m and m.group("spec")) or _URL.match(line) or _EDITABLE.match(line):
                strong += 1
            elif m or _OPTION.match(line):
                weak += 1
        return (strong > 0 or bool(_NAMES.match(path.name))) and strong + weak >= 0.8 * len(lines)

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        """One row per requirement line; an unparseable line is a warning and is skipped."""
        warnings: list[EvidenceWarning] = []
        rows: list[dict] = []
        meta: dict = {"index_urls": [], "options": [], "redacted_lines": []}
        note: tuple[str, str] | None = None  # pip's "# Editable ... (name==ver)": names the next -e line
        rejected = 0
        for number, raw in iter_lines(path, ctx, warnings):
            text = raw.strip()
            if not text:
                continue
            if text.startswith("#"):
                m = _EDITABLE_NOTE.match(text)
                note = (m.group("name"), m.group("version")) if m else note
                continue
            if text.startswith("--hash"):  # pip-compile continuation line
                continue
            text = re.sub(r"\s+#.*$", "", text)  # inline comment (needs whitespace before '#')
            text = _HASH.sub("", text).rstrip("\\ ")
            if not text:
                continue
            row, redacted, reason = self._parse(text, number, note, meta)
            note = None
            if redacted:
                meta["redacted_lines"].append(number)
            if reason:
                warnings.append(EvidenceWarning(ctx.relpath, number, reason))
                rejected += 1
            elif row:
                rows.append(row)
        if rejected and not rows:
            raise MalformedEvidence(ctx.relpath, "no requirement line in the file")
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), warnings, meta)

    def _parse(
        self, text: str, number: int, note: tuple[str, str] | None, meta: dict
    ) -> tuple[dict | None, bool, str | None]:
        """(row or None, whether credentials were redacted, warning reason or None) for one line."""
        if m := _OPTION.match(text):
            value, redacted = _redact(m.group("val").strip())
            if m.group("opt") in {"-i", "--index-url", "--extra-index-url"}:
                if not value:
                    return None, False, f"{m.group('opt')} without a URL"
                meta["index_urls"].append(value)
            else:
                meta["options"].append(f"{m.group('opt')} {value}".strip())
            return None, redacted, None
        base = {"line": number, "version": None, "specifier": None, "url": None, "revision": None, "editable": False}
        if m := _REQ.match(text):
            raw, spec = m.group("name"), re.sub(r"\s+", "", m.group("spec") or "") or None
            row = {**base, "name": normalize_name(raw), "raw_name": raw, "specifier": spec}
            if spec is None:
                return {**row, "operator": None}, False, None
            exact = _EXACT.match(spec)
            if exact and exact["op"] == "==" and not _VERSION.match(exact["version"]):
                return None, False, f"bad version {exact['version']!r}"
            operator = exact["op"] if exact else re.match(_OP, spec).group(0)  # type: ignore[union-attr]
            return {**row, "operator": operator, "version": exact["version"] if exact else None}, False, None
        if m := _URL.match(text):
            url, redacted = _redact(m.group("url"))
            raw = m.group("name")
            row = {**base, "name": normalize_name(raw), "raw_name": raw, "operator": "@", "url": url}
            return {**row, "revision": _split_vcs_rev(url)}, redacted, None
        if m := _EDITABLE.match(text):
            target, redacted = _redact(m.group("target").strip())
            egg = _EGG.search(target)
            raw = egg.group("name") if egg else note[0] if note else None
            if raw is None:
                stem = _url_path(target).rstrip("/").rsplit("/", 1)[-1]
                stem = re.sub(r"\.git$", "", stem.rsplit("@", 1)[0])
                raw = stem if re.fullmatch(_NAME, stem or "") else None
            if raw is None:
                return None, redacted, "editable install without a recognisable project name"
            row = {**base, "name": normalize_name(raw), "raw_name": raw, "operator": "-e", "url": target}
            return {**row, "revision": _split_vcs_rev(target), "editable": True}, redacted, None
        return None, False, "not a requirement line"
