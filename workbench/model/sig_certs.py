"""Who a signing certificate names, read without trusting it: subject, SAN identity, OIDC issuer, validity.

Used for the certificates that model_signing's certificate method and Sigstore (Fulcio) embed in a bundle, so that
an unverified or unverifiable signature still says whom it claims to come from. The Sigstore OIDC issuer is the
certificate extension 1.3.6.1.4.1.57264.1.8 (a DER UTF8String) or the older 1.3.6.1.4.1.57264.1.1 (raw text), as
Fulcio writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from workbench.textsafe import clean_text

__all__ = ["CertInfo", "cert_info"]

_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
MAX_FIELD = 300


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What a certificate says about its holder (all text cleaned for display).

    Attributes:
        subject / issuer_dn: RFC 4514 names.
        identity: the first SAN email or URI (what Sigstore policies match), else the subject.
        oidc_issuer: the Sigstore OIDC issuer extension, or None.
        not_before / not_after: validity (UTC).
        sha256: fingerprint of the DER certificate (hex).
    """

    subject: str
    issuer_dn: str
    identity: str
    oidc_issuer: str | None
    not_before: datetime
    not_after: datetime
    sha256: str

    def expired_at(self, when: datetime) -> bool:
        return not self.not_before <= when <= self.not_after


def _clean(text: str) -> str:
    return clean_text(text)[0][:MAX_FIELD]


def _oidc_issuer(cert: x509.Certificate) -> str | None:
    for oid, der in ((_ISSUER_V2, True), (_ISSUER_V1, False)):
        try:
            raw = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        value = getattr(raw, "value", b"")
        if der and len(value) >= 2 and value[0] == 0x0C:  # UTF8String, short or long length form
            size = value[1]
            value = value[2:] if size < 0x80 else value[2 + (size & 0x7F) :]
        return _clean(value.decode("utf-8", "replace"))
    return None


def _san_identity(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for kind in (x509.RFC822Name, x509.UniformResourceIdentifier):
        names = san.get_values_for_type(kind)
        if names:
            return _clean(names[0])
    return None


def cert_info(cert: x509.Certificate) -> CertInfo:
    """The certificate's holder as it claims to be (nothing here is verified)."""
    from cryptography.hazmat.primitives import hashes

    subject = _clean(cert.subject.rfc4514_string())
    return CertInfo(subject=subject, issuer_dn=_clean(cert.issuer.rfc4514_string()),
                    identity=_san_identity(cert) or subject or "(no subject)", oidc_issuer=_oidc_issuer(cert),
                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                    sha256=cert.fingerprint(hashes.SHA256()).hex())  # fmt: skip
