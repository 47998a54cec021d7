"""What a signature is checked against: the trust material a user gives, and where it is found in a case.

:class:`Trust` gathers it for :func:`workbench.model.signatures.verify_model_signature`:

* ``key``: a PEM public key, for cosign ``sign-blob --key`` signatures and bundles and for model_signing's key
  method (``model_signing sign key``);
* ``ca_bundle``: PEM certificates (the roots, and intermediates if they are not in the bundle) that a
  model_signing certificate-method signature (``model_signing sign certificate``) must chain to;
* ``trusted_root``: a Sigstore trusted root (``trusted_root.json``) or a client trust configuration wrapping one,
  against which Sigstore (keyless) bundles are verified offline, inclusion proof and all;
* ``identity`` / ``issuer``: the expected signer of a Sigstore bundle (its certificate's SAN and OIDC issuer); when
  absent, whoever signed is reported and the reviewer judges the identity;
* ``signature``: a signature file kept outside the model folder.

In a case: ``case.yaml`` keys ``public_key``, ``ca_bundle``, ``trusted_root``, ``signature``, ``signer_identity``,
``signer_issuer`` (paths inside the case); otherwise the case's ``keys/`` folder, each file classified by content
(a PEM public key, PEM certificates, a Sigstore trusted root JSON), used when exactly one file of a kind is there.
The analysis options of the same names (``investigate --key/--ca-bundle/--trusted-root/--signature``) override.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from workbench import safeio

__all__ = ["TRUST_FIELDS", "Trust", "classify_trust_file", "read_trust"]

#: trust fields that are files, with what each is (help texts, errors)
TRUST_FIELDS = {
    "key": "public key (PEM)",
    "ca_bundle": "CA bundle (PEM certificates)",
    "trusted_root": "Sigstore trusted root (JSON)",
    "signature": "signature file",
}
MAX_TRUST_BYTES = 4 * 1024 * 1024
TRUSTED_ROOT_TYPE = "application/vnd.dev.sigstore.trustedroot+json"
TRUST_CONFIG_TYPE = "application/vnd.dev.sigstore.clienttrustconfig"


@dataclass(frozen=True, slots=True)
class Trust:
    """The trust material for one verification (every field optional).

    Attributes:
        key / ca_bundle / trusted_root / signature: files (see the module docstring).
        identity / issuer: the expected Sigstore signer, or None (then reported, not enforced).
        shown: how each file is displayed (``{"key": "keys/cosign.pub"}``); default: the file's name.
    """

    key: Path | None = None
    ca_bundle: Path | None = None
    trusted_root: Path | None = None
    signature: Path | None = None
    identity: str | None = None
    issuer: str | None = None
    shown: dict[str, str] = field(default_factory=dict)

    def show(self, name: str) -> str | None:
        """The displayed path of trust file ``name`` (None when not given)."""
        path = getattr(self, name)
        return None if path is None else self.shown.get(name, path.name)

    def with_key(self, key: Path | None, shown: str | None = None) -> Trust:
        """A copy with another public key."""
        names = dict(self.shown)
        if shown:
            names["key"] = shown
        return replace(self, key=key, shown=names)

    @property
    def empty(self) -> bool:
        return not (self.key or self.ca_bundle or self.trusted_root)

    def given(self) -> list[str]:
        """What was given, in words (``public key keys/cosign.pub``), for messages."""
        return [f"{TRUST_FIELDS[name]} {self.show(name)}" for name in ("key", "ca_bundle", "trusted_root")
                if getattr(self, name) is not None]  # fmt: skip

    def missing(self) -> list[str]:
        """Trust files given that are not regular files (``"public key (PEM) x.pub"``)."""
        return [f"{TRUST_FIELDS[name]} {self.show(name)}" for name in TRUST_FIELDS
                if (p := getattr(self, name)) is not None and not (p.is_file() and not p.is_symlink())]  # fmt: skip


def read_trust(path: Path) -> bytes:
    """A trust file's bytes (at most 4 MiB, symlinks never followed).

    Raises:
        SignatureUnsupported: the file cannot be read or is too large (it cannot serve as trust material).
    """
    from workbench.model.cosign_blob import SignatureUnsupported

    try:
        return safeio.read_bytes(path, limit=MAX_TRUST_BYTES)
    except OSError as exc:
        raise SignatureUnsupported(f"{path.name} cannot be read: {exc.strerror or 'error'}") from None


def classify_trust_file(path: Path) -> str | None:
    """``key``, ``ca_bundle``, ``trusted_root`` or None, from the file's content (a PEM block or a Sigstore JSON).

    Reads at most 4 MiB of the file; a symlink or unreadable file is None.
    """
    try:
        data = safeio.read_bytes(path, limit=MAX_TRUST_BYTES)
    except (OSError, ValueError):
        return None
    head = data.lstrip()[:200]
    if head.startswith(b"{"):
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        media = str(doc.get("mediaType", "")) if isinstance(doc, dict) else ""
        if media.startswith((TRUSTED_ROOT_TYPE, TRUST_CONFIG_TYPE)):
            return "trusted_root"
        return None
    if b"-----BEGIN PUBLIC KEY-----" in data or b"-----BEGIN EC PUBLIC KEY-----" in data:
        return "key"
    if b"-----BEGIN RSA PUBLIC KEY-----" in data:
        return "key"
    if b"-----BEGIN CERTIFICATE-----" in data:
        return "ca_bundle"
    return None
