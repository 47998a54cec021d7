"""Indicators of compromise, gathered from the findings that show the compromise.

Read from findings about the incident of medium severity or above, only when the verdict is ``compromised`` or
``suspicious`` (a clean case has no indicator of compromise):

* structured evidence fields: ``peer`` (ip:port), ``host``, ``url`` / ``download`` / ``extra_index`` /
  ``index_url``, ``sha256`` of model artefacts and (high severity or above) of installed package files,
  ``package`` with its ``version`` (or ``actual``; the name alone when neither is known) for dependency and
  installed-package findings of high severity or above, the URLs among a grouped dependency
  finding's ``examples``, ``fingerprints`` of exposed credentials;
* URLs and IPv4 addresses in the text of pipeline-log findings, start-up hooks and incident-indicator matches, and
  in process command lines (loopback, unspecified and link-local addresses left out).

Public hosting services and trusted package indexes (``dependency_sources.yaml``: ``trusted_index_hosts``,
``public_service_hosts``) are never host indicators, and URLs on them count only when a finding names them in its
own fields (a fork on github.com), not when they merely appear in a log line.

A credential is never an indicator by its value: only by the rule that found it and its fingerprint. Each
indicator lists every finding that cites it and the earliest time among them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from workbench.categories import group_of, is_incident
from workbench.conclusions.record import Indicator
from workbench.data.dependency_data import default_dependency_data
from workbench.records import Finding, Severity

__all__ = ["KINDS", "defang", "indicators_of"]

KINDS = ("ip", "host", "url", "index_url", "sha256", "package", "credential")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s'\"<>|;`)\]]+", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\d.])")
_TEXT_CATEGORIES = {"log_pattern", "suspicious_process", "import_hook", "incident_indicator"}
_URL_FIELDS = {"url": "url", "download": "url", "extra_index": "index_url", "index_url": "index_url"}
_MODEL_GROUPS = {"artefacts", "model_code", "weights"}
_MAX_TEXT = 4000


def _routable(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_unspecified or addr.is_link_local or addr.is_multicast)


def _local_url(url: str) -> bool:
    """A URL on this machine (localhost, loopback, link-local): never an indicator."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host == "localhost" or (bool(_IPV4.fullmatch(host)) and not _routable(host))


class _Collector:
    def __init__(self) -> None:
        self.found: dict[tuple[str, str], dict] = {}
        self.public = default_dependency_data().public_host

    def add(self, kind: str, value: str, f: Finding, context: str) -> None:
        value = value.strip().rstrip(".,")
        if not value or (kind == "ip" and not _routable(value)) or (kind == "host" and self.public(value)):
            return
        if kind in ("url", "index_url") and _local_url(value):
            return
        item = self.found.setdefault((kind, value), {"findings": [], "times": [], "context": context})
        if f.id not in item["findings"]:
            item["findings"].append(f.id)
        if f.timestamp is not None:
            item["times"].append(f.timestamp)

    def host_of(self, url: str, f: Finding, context: str) -> None:
        try:
            host = urlsplit(url if "://" in url else f"//{url}").hostname
        except ValueError:
            return
        if host:
            self.add("ip" if _IPV4.fullmatch(host) else "host", host, f, context)

    def result(self) -> tuple[Indicator, ...]:
        order = {k: i for i, k in enumerate(KINDS)}
        items = []
        for (kind, value), item in self.found.items():
            first: datetime | None = min(item["times"]) if item["times"] else None
            items.append(Indicator(kind, value, first, tuple(item["findings"]), item["context"]))
        return tuple(sorted(items, key=lambda i: (order[i.kind], i.value)))


def _from_fields(c: _Collector, f: Finding, group: str) -> None:
    ev = f.evidence
    what = f.category.replace("_", " ")
    if isinstance(ev.get("peer"), str):
        host, _, port = ev["peer"].rpartition(":")
        host = host.strip("[]") or ev["peer"]
        c.add("ip" if _routable(host) else "host", host, f, f"{what} peer" + (f" (port {port})" if port else ""))
    if isinstance(ev.get("host"), str):
        c.add("ip" if _IPV4.fullmatch(ev["host"]) else "host", ev["host"], f, what)
    for key, kind in _URL_FIELDS.items():
        value = ev.get(key)
        if isinstance(value, str) and "://" in value and not value.startswith("file:"):
            c.add(kind, value, f, what)
            c.host_of(value, f, what)
    if group in _MODEL_GROUPS and isinstance(ev.get("sha256"), str):
        c.add("sha256", ev["sha256"], f, f"{ev.get('path', 'model file')}")
    if group == "packages" and f.severity.rank >= Severity.HIGH.rank and isinstance(ev.get("sha256"), str):
        c.add("sha256", ev["sha256"], f, f"installed file {ev.get('path', '')}".strip())
    high = f.severity.rank >= Severity.HIGH.rank
    if group in ("dependencies", "packages") and high and isinstance(ev.get("package"), str):
        version = ev.get("version") or ev.get("actual")
        pinned = isinstance(version, str) and version and "://" not in version
        c.add("package", f"{ev['package']}=={version}" if pinned else ev["package"], f, what)
    if group == "dependencies":  # a grouped finding names its downloads in its examples
        for url in ev.get("examples") or ():
            if isinstance(url, str) and _URL.fullmatch(url):
                c.add("url", url, f, what)
    if f.category == "secret_exposed":
        prints = [p.strip() for p in str(ev.get("fingerprints") or "").split(",") if p.strip()]
        label = f.title.split(":")[0].strip()
        for p in prints or [""]:
            c.add("credential", f"{label} {p}".strip(), f, f"exposed in {ev.get('path', 'the evidence')}")


def _from_text(c: _Collector, f: Finding) -> None:
    if f.category == "suspicious_process":
        text = str(f.evidence.get("command") or "")[:_MAX_TEXT]
    else:
        text = " ".join(str(x) for x in (f.title, f.detail))[:_MAX_TEXT]
    for url in _URL.findall(text):
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host and c.public(host):
            continue
        c.add("url", url, f, "in " + f.category.replace("_", " "))
        c.host_of(url, f, "in " + f.category.replace("_", " "))
    for ip in _IPV4.findall(_URL.sub(" ", text)):
        c.add("ip", ip, f, "in " + f.category.replace("_", " "))


def defang(kind: str, value: str) -> str:
    """An indicator written so that no reader or mail client turns it into a live link: the last dot of the host
    bracketed (``203.0.113[.]7``, ``pypi.attacker[.]example``) and ``http`` written ``hxxp``. Hashes, packages and
    credentials are unchanged."""
    if kind not in ("ip", "host", "url", "index_url"):
        return value
    out = re.sub(r"^http", "hxxp", value, flags=re.IGNORECASE) if kind in ("url", "index_url") else value
    out = re.sub(r"^ftp", "fxp", out, flags=re.IGNORECASE)
    head, sep, rest = out.partition("://")
    if not sep:
        return _bracket_last_dot(out)
    host, slash, path = rest.partition("/")
    return f"{head}{sep}{_bracket_last_dot(host)}{slash}{path}"


def _bracket_last_dot(host: str) -> str:
    left, dot, right = host.rpartition(".")
    return f"{left}[.]{right}" if dot else host


def indicators_of(verdict: str, findings: Iterable[Finding]) -> tuple[Indicator, ...]:
    """Every indicator of compromise (module docstring), by kind then value."""
    if verdict not in ("compromised", "suspicious"):
        return ()
    c = _Collector()
    for f in findings:
        if not is_incident(f.category) or f.severity.rank < Severity.MEDIUM.rank:
            continue
        group = group_of(f.category).key
        _from_fields(c, f, group)
        if f.category in _TEXT_CATEGORIES:
            _from_text(c, f)
    return c.result()
