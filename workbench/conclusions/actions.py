"""What to do now and what to change, derived from the findings; each item cites the findings it rests on.

Immediate actions (``kind="now"``), named after what they act on:

* ``contain_model``: the model is compromised and no isolation is recorded;
* ``roll_back_model``: the model's own files are compromised and no completed rollback is recorded;
* ``block_hosts``: hosts and addresses the attacker used (indicators from host, pipeline and dependency findings);
* ``rotate_credentials``: credentials exposed in the evidence (named by rule and fingerprint, never by value);
* ``remove_packages``: malicious package versions, installed packages whose files are not the published ones;
* ``remove_startup_hooks``: start-up hooks (``.pth`` lines, ``sitecustomize``) flagged in a captured environment;
* ``rotate_package_tokens``: a package that ran code in the environment (a start-up hook, modified or
  known-compromised code): every credential that environment's processes could read;
* ``investigate_hosts``: hosts with attacker processes or connections;
* ``rescore_predictions``: predictions served in the exposure window;
* ``verify_signature``: a signature that could not be settled (no key, CA bundle or trusted root given, or a scheme
  the workbench cannot check), naming the signer it claims;
* ``reverify_evidence``: evidence that no longer matches its intake;
* the playbook's two general ones, always: ``review_pipeline_models`` and ``rotate_pipeline_credentials``
  (high when a compromise is evidenced, medium routine checks otherwise).

Preventive measures (``kind="preventive"``): ``enforce_signing``, ``safetensors_only``, ``pin_dependencies``,
``disable_remote_code``, ``harden_pipeline``.

Only findings about the incident of at least medium severity justify anything (custody violations excepted, which
justify re-verification; and the low format notice of a pickle-based file, which justifies ``safetensors_only``:
:data:`_PREVENTIVE_FLOOR`). Priority: the rule's base, raised to the worst justifying finding's severity. Order:
priority, then the rule order above.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from workbench.categories import categories_of, group_of, is_incident
from workbench.conclusions.record import Action, Exposure, Indicator, Milestone, display
from workbench.records import Finding, Severity

__all__ = ["actions_of"]

_MAX_NAMES = 8
_MODEL_GROUPS = {"model_code", "weights", "artefacts"}


def listing(names: Iterable[str], limit: int = _MAX_NAMES) -> str:
    """``a, b, c and 3 more``."""
    names = list(dict.fromkeys(names))
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass(slots=True)
class _Facts:
    verdict: str
    relevant: list[Finding]
    indicators: tuple[Indicator, ...]
    exposure: Exposure | None
    milestones: dict[str, Milestone]
    models: list[str]

    def of(self, *groups: str, floor: Severity = Severity.MEDIUM) -> list[Finding]:
        return [f for f in self.relevant if group_of(f.category).key in groups and f.severity.rank >= floor.rank]

    def indicators_for(self, kinds: set[str], found: list[Finding]) -> list[Indicator]:
        ids = {f.id for f in found}
        return [i for i in self.indicators if i.kind in kinds and ids.intersection(i.findings)]


def _make(key: str, base: Severity, text: str, found: list[Finding], kind: str = "now",
          targets: Iterable[str] = ()) -> Action:  # fmt: skip
    worst = max((f.severity for f in found), key=lambda s: s.rank, default=base)
    priority = worst if worst.rank > base.rank else base
    because = tuple(dict.fromkeys(f.id for f in sorted(found, key=lambda f: (-f.severity.rank, f.id))))
    return Action(key, priority, text, because, kind, tuple(targets))


def _contain(fx: _Facts) -> Action | None:
    found = fx.of("model_code", "weights", "artefacts", "behaviour", floor=Severity.HIGH)
    if fx.verdict != "compromised" or not found or fx.milestones["containment"].time is not None:
        return None
    names = fx.models or ["the affected model"]
    return _make("contain_model", Severity.CRITICAL, f"Take {listing(names)} out of serving now: the model is "
                 "compromised and no isolation is recorded in the evidence.", found, targets=names)  # fmt: skip


def _roll_back(fx: _Facts) -> Action | None:
    found = fx.of("model_code", "weights", "artefacts", floor=Severity.HIGH)
    if fx.verdict != "compromised" or not found or fx.milestones["recovery"].time is not None:
        return None
    names = fx.models or ["the affected model"]
    return _make("roll_back_model", Severity.CRITICAL, f"Roll {listing(names)} back to the last known-good release "
                 "whose signature verifies and whose files match their signed digests; verify it before it serves.",
                 found, targets=names)  # fmt: skip


def _block(fx: _Facts) -> Action | None:
    found = fx.of("live_activity", "pipeline", "dependencies", floor=Severity.HIGH)
    hosts = fx.indicators_for({"ip", "host"}, found)
    if not hosts:
        return None
    cited = [f for f in found if {f.id} & {x for i in hosts for x in i.findings}]
    values = [i.value for i in hosts]
    return _make("block_hosts", Severity.HIGH, f"Block traffic to {listing(values)} at the egress firewall and proxy, "
                 "and search DNS, proxy and flow logs for other hosts that reached them.", cited,
                 targets=values)  # fmt: skip


def _rotate(fx: _Facts) -> Action | None:
    found = fx.of("credentials")
    if not found:
        return None
    names = [i.value for i in fx.indicators_for({"credential"}, found)] or [f.title.split(":")[0] for f in found]
    paths = listing(sorted({str(f.evidence.get("path")) for f in found if f.evidence.get("path")}))
    first = min((f.timestamp for f in found if f.timestamp), default=None)
    since = f" and review every use of them since {display(first)}" if first else " and review their use"
    return _make("rotate_credentials", Severity.CRITICAL, f"Revoke and rotate the exposed credentials now "
                 f"({listing(names)}){since}; purge them from {paths or 'the logs that hold them'}.", found,
                 targets=names)  # fmt: skip


def _packages(fx: _Facts) -> Action | None:
    found = fx.of("dependencies", "packages", floor=Severity.HIGH)
    pins = [i.value for i in fx.indicators_for({"package"}, found)]
    if not pins:
        return None
    cited = [f for f in found if {f.id} & {x for i in fx.indicators for x in i.findings if i.kind == "package"}]
    installed = any(group_of(f.category).key == "packages" for f in cited)
    them = "them" if len(pins) > 1 else "it"
    then = (f"; uninstall {them} from the captured environments and reinstall from verified wheels (pip install "
            "--require-hashes against a lock file) or rebuild those environments;" if installed else ",")  # fmt: skip
    return _make("remove_packages", Severity.HIGH, f"Remove {listing(pins)} from every build and serving image{then}"
                 " rebuild the images from a pinned, hash-checked set, and search other images and caches for these "
                 "versions.", cited or found, targets=pins)  # fmt: skip


def _hooks_found(fx: _Facts) -> Action | None:
    found = [f for f in fx.of("packages", floor=Severity.HIGH) if f.category == "import_hook"]
    paths = [f"{f.evidence['path']} ({f.evidence['environment']})" for f in found
             if f.evidence.get("path") and f.evidence.get("environment")]  # fmt: skip
    if not paths:
        return None
    return _make("remove_startup_hooks", Severity.HIGH, f"Preserve, then delete the start-up hooks {listing(paths)} "
                 "from every environment built the same way (they run at every interpreter start); restart the "
                 "services using those environments and check no other .pth or sitecustomize file appeared.", found,
                 targets=paths)  # fmt: skip


#: installed-package findings that mean the package's code ran (or runs) in the environment
_RAN_CODE = frozenset({"import_hook", "package_compromised_version", "package_file_modified", "package_hash_mismatch"})


def _package_tokens(fx: _Facts) -> Action | None:
    found = [f for f in fx.of("packages", floor=Severity.HIGH) if f.category in _RAN_CODE]
    if not found:
        return None
    names = [str(f.evidence["package"]) for f in found if f.evidence.get("package")]
    what = listing(names) if names else "the flagged packages"
    return _make("rotate_package_tokens", Severity.CRITICAL, f"Rotate every credential the environment running "
                 f"{what} could read: its environment variables and CI secrets, package-index and registry tokens "
                 "(~/.pypirc, PYPI_TOKEN, HF_TOKEN), cloud credentials, SSH keys and kube configs on the host; code "
                 "in these packages ran at import or interpreter start with the process's rights.", found,
                 targets=names)  # fmt: skip


def _hosts(fx: _Facts) -> Action | None:
    found = fx.of("live_activity")
    if not found:
        return None
    what = [str(f.evidence.get("command") or f.title)[:80] for f in found if f.category == "suspicious_process"]
    peers = [str(f.evidence["peer"]) for f in found if f.evidence.get("peer")]
    detail = "; ".join(x for x in (f"processes: {listing(what, 3)}" if what else "",
                                    f"connections to {listing(peers, 4)}" if peers else "") if x)  # fmt: skip
    return _make("investigate_hosts", Severity.HIGH, f"Capture memory and disk of the hosts running attacker activity "
                 f"({detail}), look for persistence, then rebuild them from a clean image before reuse.",
                 found)  # fmt: skip


def _rescore(fx: _Facts) -> Action | None:
    window = fx.exposure
    if window is None or not window.predictions:
        return None
    found = fx.of("behaviour", "model_code", "weights", "artefacts")
    if not found and not window.shifted:
        return None
    end = display(window.end) if window.end else "the end of the records"
    return _make("rescore_predictions", Severity.HIGH, f"Re-score the {window.predictions:,} predictions served from "
                 f"{display(window.start)} to {end} with the known-good model and notify the consumers of every "
                 "prediction whose outcome changes.", found)  # fmt: skip


#: provenance findings a reviewer can settle by giving the trust material the signature needs
_UNSETTLED = frozenset({"signature_unverified", "signature_unverifiable_offline", "signature_unsupported"})


def _verify_signature(fx: _Facts) -> Action | None:
    found = [f for f in fx.relevant if f.category in _UNSETTLED]
    if not found:
        return None
    signers = sorted({str(f.evidence["signer"]) for f in found if f.evidence.get("signer")})
    who = f"; confirm that {listing(signers)} is the signer you expect" if signers else ""
    names = fx.models or ["the model"]
    return _make("verify_signature", Severity.MEDIUM, f"Verify the signature of {listing(names)} before relying on "
                 "it: give the signer's public key, the CA bundle or the Sigstore trusted root it was signed with "
                 f"(docs/signing.md) and run verify-model or the investigation again{who}.", found,
                 targets=names)  # fmt: skip


def _reverify(findings: list[Finding]) -> Action | None:
    found = [f for f in findings if f.category == "custody_violation"]
    if not found:
        return None
    return _make("reverify_evidence", Severity.HIGH, "Evidence no longer matches its intake: re-verify it against the "
                 "custody ledger (workbench custody verify), re-acquire the changed files from their source and "
                 "record why they changed before relying on the findings that depend on them.", found)  # fmt: skip


def _general(fx: _Facts) -> list[Action]:
    critical = [f for f in fx.relevant if f.severity is Severity.CRITICAL]
    base = Severity.HIGH if critical else Severity.MEDIUM
    if critical:
        review = "Review every model deployed from the same pipeline as the compromised model."
        rotate = ("Rotate all credentials accessible to the compromised pipeline (model registry tokens, API keys of "
                  "the inference pipeline, build and signing secrets).")  # fmt: skip
    else:
        review = "As a routine check (no compromise is evidenced), review the models deployed from the same pipeline."
        rotate = ("As a routine check (no compromise is evidenced), confirm that no credential accessible to the "
                  "pipeline was used unexpectedly, and rotate any that was.")  # fmt: skip
    return [
        Action("review_pipeline_models", base, review, tuple(f.id for f in critical[:20]), "now", ()),
        Action("rotate_pipeline_credentials", base, rotate, tuple(f.id for f in critical[:20]), "now", ()),
    ]


_PREVENTIVE: tuple[tuple[str, Severity, frozenset[str], str], ...] = (
    ("enforce_signing", Severity.CRITICAL, frozenset({"model_unsigned", "signature_invalid"}),
     "Enforce model signing: sign every production model (a manifest of file digests signed with cosign or OpenSSF "
     "model signing) and refuse to deploy or load a model unless its signature verifies and every file matches its "
     "signed digest."),
    ("safetensors_only", Severity.HIGH, frozenset({"dangerous_file_type", "pickle_dangerous_import",
                                                   "pickle_suspicious_import"}),
     "Enforce a safetensors-only policy: remove pickle, joblib and Python files from model artefacts and refuse to "
     "load them (no torch.load without weights_only=True, no joblib.load of model files)."),
    ("pin_dependencies", Severity.HIGH, categories_of("dependencies", "packages"),
     "Pin every dependency of the build and serving images with hashes (a lock file installed with pip "
     "--require-hashes) and install only from the internal package index (no --extra-index-url, no URL or VCS "
     "installs)."),
    ("disable_remote_code", Severity.HIGH, frozenset({"custom_code_reference"}),
     "Load models with trust_remote_code disabled and remove custom-code references (auto_map) from model "
     "configurations; review any custom code before it is allowed."),
    ("harden_pipeline", Severity.MEDIUM, categories_of("pipeline", "credentials"),
     "Harden the ML pipeline: require review for changes to CI steps, forbid piping downloads into a shell, keep "
     "secrets out of logs (masked variables, no environment dumps), and restrict build jobs' network access to the "
     "package mirror and the model registry."),
)  # fmt: skip

#: findings of a lower severity than medium that still call for a preventive measure: the low format notice of a
#: pickle-based file asks for safetensors (a standing risk, not a sign of tampering)
_PREVENTIVE_FLOOR: dict[str, Severity] = {"safetensors_only": Severity.LOW}

_NOW: tuple[Callable[[_Facts], Action | None], ...] = (_contain, _roll_back, _block, _rotate, _packages,
                                                         _hooks_found, _package_tokens, _hosts, _rescore,
                                                         _verify_signature)  # fmt: skip


def actions_of(
    verdict: str,
    findings: Iterable[Finding],
    indicators: tuple[Indicator, ...],
    exposure: Exposure | None,
    milestones: dict[str, Milestone],
    models: list[str],
) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
    """``(actions now, preventive recommendations)`` (module docstring), each worst priority first."""
    findings = list(findings)
    relevant = [f for f in findings if is_incident(f.category) and f.severity.rank >= Severity.MEDIUM.rank]
    fx = _Facts(verdict, relevant, indicators, exposure, milestones, models)
    now = [a for rule in _NOW if (a := rule(fx)) is not None]
    if (a := _reverify(findings)) is not None:
        now.append(a)
    now += _general(fx)
    preventive = []
    for key, base, categories, text in _PREVENTIVE:
        floor = _PREVENTIVE_FLOOR.get(key, Severity.MEDIUM)
        found = [f for f in findings if f.category in categories and f.severity.rank >= floor.rank]
        if found:
            preventive.append(_make(key, base, text, found, kind="preventive"))
    order = {a.key: i for i, a in enumerate(now + preventive)}
    now.sort(key=lambda a: (-a.priority.rank, order[a.key]))
    preventive.sort(key=lambda a: (-a.priority.rank, order[a.key]))
    return tuple(now), tuple(preventive)
