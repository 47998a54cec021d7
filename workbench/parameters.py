"""The analysis options (``investigate -p NAME=VALUE``, the notebook's ``OPTIONS``): one registry, checked early.

:data:`REGISTRY` is the one list of option names: each :class:`Parameter` has a name, a kind, a default, one line
of help and the section that reads it. The CLI parses ``NAME=VALUE`` text with :func:`parse_assignments`; the runner
and the notebook's setup check a mapping with :func:`validate`; both refuse an unknown name (listing the valid ones)
or a value of the wrong kind before anything is written. Analyses read an option with :func:`value`, which falls
back to the registry's default. ``investigate --help`` and the README's option table are generated from here
(:func:`help_lines`, :func:`markdown_table`).

Kinds: ``file`` (an existing file, made absolute), ``text``, ``list`` (comma-separated text, or a list of
strings), ``probability`` (a number strictly between 0 and 1),
``distance`` (a number from 0 to 1), ``window`` (a duration such as ``1h``, ``30min``, ``1d``, or a count of
predictions such as ``500``), ``folders`` (existing folders, comma-separated; made absolute, since the notebook
kernel does not run in the caller's folder).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = [
    "REGISTRY",
    "Parameter",
    "ParameterError",
    "help_lines",
    "markdown_table",
    "parse_assignments",
    "validate",
    "value",
]


class ParameterError(WorkbenchError):
    """An analysis option is unknown or its value is not of its kind.

    Attributes:
        name: the option concerned.
        reason: what is wrong, in words.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"-p {name}: {reason}")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One analysis option.

    Attributes:
        name: as given to ``-p`` and in ``OPTIONS``.
        kind: one of :data:`KINDS`.
        default: the value an analysis uses when the option is not given.
        help: one line of help.
        section: the analysis (section key) that reads it.
    """

    name: str
    kind: str
    default: Any
    help: str
    section: str


def _names(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [v.strip() for v in raw.split(",") if v.strip()]
    if isinstance(raw, list | tuple) and all(isinstance(v, str) for v in raw):
        return [v.strip() for v in raw if v.strip()]
    raise ValueError("expected comma-separated text or a list of strings")


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {raw!r}") from None


def _probability(raw: Any) -> float:
    x = _number(raw)
    if not 0 < x < 1:
        raise ValueError(f"must lie strictly between 0 and 1, got {x:g}")
    return x


def _distance(raw: Any) -> float:
    x = _number(raw)
    if not 0 <= x <= 1:
        raise ValueError(f"must lie between 0 and 1, got {x:g}")
    return x


#: the drift analysis' window grammar (:func:`workbench.drift.windows.parse_window`; a test keeps the two equal)
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|hour|d|day)s?\s*$", re.IGNORECASE)


def _window(raw: Any) -> str | int:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError("expected a duration such as 1h, 30min, 1d or a count such as 500")
    text = str(raw).strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError(f"window {raw!r}: a count of predictions must be at least 1")
        return raw if isinstance(raw, int) else text
    m = _DURATION.match(text)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"window {raw!r} is not a duration such as 1h, 30min, 1d or a count such as 500")
    return text


def _folders(raw: Any) -> list[str]:
    folders = [raw] if isinstance(raw, Path) else _names(raw)
    out = []
    for folder in folders:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise ValueError(f"{folder}: not an existing folder")
        out.append(str(path.resolve()))
    return out


def _file(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | Path) or not str(raw).strip():
        raise ValueError("expected the path of an existing file")
    path = Path(str(raw).strip()).expanduser()
    if not path.is_file():
        raise ValueError(f"{raw}: not an existing file")
    return str(path.resolve())


def _text(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError("expected text")
    return str(raw).strip()


#: kind -> checker (text or Python value -> normalised value; ValueError with the reason)
KINDS = {"list": _names, "probability": _probability, "distance": _distance, "window": _window, "folders": _folders,
         "file": _file, "text": _text}  # fmt: skip
#: what each kind accepts, in words (help and error messages)
KIND_TEXT = {
    "list": "comma-separated list",
    "probability": "number, 0 < x < 1",
    "distance": "number, 0 <= x <= 1",
    "window": "duration (1h, 30min, 1d) or count (500)",
    "folders": "existing folder(s), comma-separated",
    "file": "an existing file",
    "text": "text",
}
_LISTS = frozenset({"list", "folders"})

#: every analysis option, by name (the one list: analyses read only these)
REGISTRY: dict[str, Parameter] = {}


def register(parameter: Parameter) -> None:
    """Add an option to :data:`REGISTRY` (names are unique; the kind must be known)."""
    if parameter.name in REGISTRY:
        raise ValueError(f"option {parameter.name!r} registered twice")
    if parameter.kind not in KINDS:
        raise ValueError(f"option {parameter.name!r}: unknown kind {parameter.kind!r}")
    REGISTRY[parameter.name] = parameter


def _unknown(name: str) -> ParameterError:
    close = difflib.get_close_matches(name.lower(), REGISTRY, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return ParameterError(name, f"unknown option; {hint}valid options: {', '.join(REGISTRY)}")


def _check(name: str, raw: Any) -> Any:
    parameter = REGISTRY.get(name)
    if parameter is None:
        raise _unknown(name)
    try:
        return KINDS[parameter.kind](raw)
    except ValueError as exc:
        raise ParameterError(name, f"{exc} (expected {KIND_TEXT[parameter.kind]})") from None


def validate(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a mapping of options (the notebook's ``OPTIONS``, the runner's ``parameters``).

    Returns:
        The options with normalised values (lists as lists, numbers as floats, folders absolute).

    Raises:
        ParameterError: an unknown name (the message lists the valid ones) or a value not of its kind.
    """
    return {str(name): _check(str(name), raw) for name, raw in (options or {}).items()}


def parse_assignments(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse and check ``NAME=VALUE`` texts (``investigate -p``); a list option given twice is extended.

    Returns:
        The options with normalised values.

    Raises:
        ParameterError: not ``NAME=VALUE``, an unknown name, a value not of its kind, or a single-valued option given
            twice.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(pair, "expected NAME=VALUE")
        checked = _check(name, text)
        if name in options:
            if REGISTRY[name].kind not in _LISTS:
                raise ParameterError(name, "given twice")
            options[name] = options[name] + checked
        else:
            options[name] = checked
    return options


def value(options: Mapping[str, Any] | None, name: str) -> Any:
    """The option ``name`` from ``options``, or its registered default.

    Raises:
        KeyError: ``name`` is not a registered option (a programming error: register it first).
    """
    parameter = REGISTRY[name]
    given = (options or {}).get(name)
    return parameter.default if given is None else given


def help_lines() -> list[str]:
    """Two lines per option (name and help; kind, default and the section reading it), for ``investigate --help``."""
    width = max(len(p.name) for p in REGISTRY.values())
    lines = []
    for p in REGISTRY.values():
        lines.append(f"{p.name:<{width}}  {p.help}")
        lines.append(f"{'':<{width}}  {KIND_TEXT[p.kind]}; default {_default_text(p)}; read by {p.section}")
    return lines


def markdown_table() -> str:
    """The README's option table."""
    rows = ["| option | kind | default | read by | what |", "|---|---|---|---|---|"]
    rows += [
        f"| `{p.name}` | {KIND_TEXT[p.kind]} | {_default_text(p)} | {p.section} | {p.help} |" for p in REGISTRY.values()
    ]
    return "\n".join(rows)


def _default_text(p: Parameter) -> str:
    if p.default in (None, [], ""):
        return "none"
    return str(p.default)


register(Parameter("network_allowlist", "list", [], "expected peers (IPs, CIDR ranges), added to case.yaml's",
                   "host"))  # fmt: skip
register(Parameter("model_servers", "list", [], "extra program names that serve models", "host"))
register(Parameter("internal_prefixes", "list", [], "the organisation's package-name prefixes (confusion)",
                   "dependencies"))  # fmt: skip
register(Parameter("trusted_index_hosts", "list", [], "extra trusted package-index hosts (your own index)",
                   "dependencies"))  # fmt: skip
register(Parameter("log_rules", "folders", [], "rule folders extending the shipped log rules", "logs"))
register(Parameter("intel", "folders", [], "incident intel feed folders (known-compromised versions, indicators)",
                   "packages"))  # fmt: skip
register(Parameter("drift_window", "window", "1d", "window of the per-window drift table", "drift"))
register(Parameter("drift_alpha", "probability", 0.05, "significance level of a drift verdict", "drift"))
register(Parameter("drift_min_effect", "distance", 0.02, "smallest JS distance counted as drift", "drift"))
register(Parameter("public_key", "file", None, "signer's PEM public key (overrides case.yaml public_key)", "model"))
register(Parameter("ca_bundle", "file", None, "PEM CA certificates for model_signing certificate signatures",
                   "model"))  # fmt: skip
register(Parameter("trusted_root", "file", None, "Sigstore trusted_root.json: verify keyless signatures offline",
                   "model"))  # fmt: skip
register(Parameter("signature", "file", None, "the suspect model's signature kept outside its folder", "model"))
register(Parameter("signer_identity", "text", None, "expected Sigstore signer identity (else reported)", "model"))
register(Parameter("signer_issuer", "text", None, "expected OIDC issuer of that identity", "model"))
