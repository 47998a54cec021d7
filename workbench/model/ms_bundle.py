"""OpenSSF model signing bundles (``model.sig``) checked offline, for each of model_signing's three methods.

The bundle is a Sigstore bundle holding a DSSE envelope over an in-toto statement that lists the model's file (or
shard) digests. Its ``verificationMaterial`` says how it was signed, and so how it is checked:

* ``publicKey`` -- ``model_signing sign key``: verified with the user's EC public key by model_signing's own key
  verifier (P-256/P-384/P-521); without a key, ``unverified``.
* ``x509CertificateChain`` -- ``model_signing sign certificate``: verified by model_signing's certificate verifier
  against the CA bundle the user gives (the chain is checked as of the signing certificate's start, exactly as
  model_signing does; an expired certificate is noted). Without a CA bundle the envelope is checked under the
  certificate's own key and the outcome is ``unverified``, naming the certificate.
* ``certificate`` (+ transparency-log entries) -- ``model_signing sign sigstore`` (keyless, Fulcio and Rekor):
  verified offline by sigstore-python against the trusted root the user gives (certificate chain, SCT, log
  inclusion proof and promise, and the expected identity when given). Without a root the envelope is checked under
  the certificate's key and the outcome is ``unverifiable_offline``, naming the identity and its issuer.

Nothing here uses the network; sigstore-python is only given a trusted root read from a file.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from workbench.model.cosign_blob import SignatureError, SignatureUnsupported, load_public_key
from workbench.model.sig_certs import CertInfo, cert_info
from workbench.model.sig_signed import Signed, bundle_b64
from workbench.model.sigstore_offline import identity_policy, trusted_root
from workbench.model.trust import Trust, read_trust

__all__ = ["check_bundle", "material_kind"]

_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class _Text:
    """What model_signing's ``Signature.read`` reads a bundle from (the bytes already read and capped here)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read_text(self, encoding: str = "utf-8") -> str:
        return self._data.decode(encoding)


def material_kind(doc: dict[str, Any]) -> str:
    """``key``, ``certificate`` or ``sigstore``, from the bundle's verification material."""
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise SignatureError("the bundle has no verification material")
    if "publicKey" in material:
        return "key"
    if "x509CertificateChain" in material:
        return "certificate"
    if "certificate" in material:
        return "sigstore"
    raise SignatureError("the bundle's verification material is neither a key, a certificate nor a chain")


def _leaf(doc: dict[str, Any], kind: str) -> x509.Certificate:
    material = doc["verificationMaterial"]
    try:
        raw = (material["x509CertificateChain"]["certificates"][0]["rawBytes"] if kind == "certificate"
               else material["certificate"]["rawBytes"])  # fmt: skip
    except (KeyError, IndexError, TypeError):
        raise SignatureError("the bundle's signing certificate is missing") from None
    try:
        return x509.load_der_x509_certificate(bundle_b64(raw, "certificate"))
    except ValueError:
        raise SignatureError("the bundle's signing certificate is not a DER certificate") from None


def _envelope(doc: dict[str, Any]) -> tuple[str, bytes, bytes]:
    env = doc.get("dsseEnvelope")
    if not isinstance(env, dict) or not isinstance(env.get("signatures"), list) or not env["signatures"]:
        raise SignatureError("the bundle holds no signed DSSE envelope")
    sig = env["signatures"][0].get("sig") if isinstance(env["signatures"][0], dict) else None
    payload = bundle_b64(env.get("payload", ""), "payload")
    return str(env.get("payloadType", "")), payload, bundle_b64(sig or "", "signature")


def _manifest(payload_type: str, payload: bytes) -> Any:
    """The statement's manifest, with model_signing's own checks (payload and statement types)."""
    from model_signing._signing import signing

    if payload_type != signing._IN_TOTO_JSON_PAYLOAD_TYPE:
        raise SignatureError(f"the envelope's payload type is {payload_type[:80]!r}, not an in-toto statement")
    try:
        doc = json.loads(payload)
        if doc.get("_type") != signing._IN_TOTO_STATEMENT_TYPE:
            raise SignatureError("the envelope's payload is not an in-toto statement")
        return signing.dsse_payload_to_manifest(doc)
    except SignatureError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SignatureError("the signed statement does not describe a model (no usable resource digests)") from None


def _under_own_key(doc: dict[str, Any], cert: x509.Certificate) -> Any:
    """The envelope checked under its certificate's key (proves that key signed it, not who holds the key)."""
    from model_signing._signing import sign_sigstore_pb

    payload_type, payload, sig = _envelope(doc)
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise SignatureUnsupported(f"the signing certificate's key ({type(key).__name__.strip('_')}) is not one "
                                   "model_signing signs with (ECDSA P-256, P-384, P-521)")  # fmt: skip
    from model_signing._signing.sign_ec_key import get_ec_key_hash

    for pae, algorithm in ((sign_sigstore_pb.pae, get_ec_key_hash(key)), (sign_sigstore_pb.pae_compat, None)):
        try:
            from cryptography.hazmat.primitives import hashes

            key.verify(sig, pae(payload), ec.ECDSA(algorithm or hashes.SHA256()))
            return _manifest(payload_type, payload)
        except InvalidSignature:
            continue
    raise SignatureError("the envelope's signature does not match the key of the certificate it carries")


def _serialization(manifest: Any) -> dict[str, Any]:
    return dict(manifest.serialization_type)


def _digests(manifest: Any) -> dict[str, str]:
    return {str(rd.identifier): rd.digest.digest_hex for rd in manifest.resource_descriptors()}


def _signed(method: str, manifest: Any, **kw: Any) -> Signed:
    return Signed(method=method, digests=_digests(manifest), serialization=_serialization(manifest), **kw)


def _log_time(doc: dict[str, Any]) -> tuple[str, datetime | None]:
    entries = doc.get("verificationMaterial", {}).get("tlogEntries") or []
    if not entries:
        return "absent", None
    try:
        return "present", datetime.fromtimestamp(int(entries[0]["integratedTime"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return "present", None


def _by_key(data: bytes, doc: dict[str, Any], trust: Trust) -> Signed:
    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    if trust.key is None:
        payload_type, payload, _ = _envelope(doc)
        hint = str((doc["verificationMaterial"].get("publicKey") or {}).get("hint") or "")[:64]
        return _signed("model_signing key", _manifest(payload_type, payload), trusted=False, checked=False,
                       reason="no public key given", signer=f"a key (hint {hint})" if hint else "a key")  # fmt: skip
    key = load_public_key(read_trust(trust.key))
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise SignatureUnsupported(f"model_signing's key method signs with ECDSA P-256/P-384/P-521 keys; "
                                   f"{trust.show('key')} is {type(key).__name__.strip('_')}")  # fmt: skip
    quiet = io.StringIO()  # the verifier prints a warning for old bundles; keep stdout clean for --json
    try:
        with contextlib.redirect_stdout(quiet):
            manifest = sign_ec_key.Verifier(trust.key).verify(sign_sigstore_pb.Signature.read(_Text(data)))
    except InvalidSignature:
        raise SignatureError(f"the envelope's signature does not verify under {trust.show('key')}") from None
    except ValueError as exc:
        if "Key mismatch" in str(exc):
            raise SignatureError(f"the bundle was signed with another key than {trust.show('key')} "
                                 "(its key hint differs)") from None  # fmt: skip
        raise SignatureError(_statement_problem(exc)) from None
    except (KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError):
        raise SignatureError("the bundle is not a model_signing bundle (fields missing or of the wrong type)") from None
    notes = ["the bundle uses model_signing's older verification material (no key hint)"] if quiet.getvalue() else []
    return _signed(f"model_signing key (ECDSA {_CURVES[key.curve.name]})", manifest, trusted=True,
                   signer=trust.show("key"), notes=notes)  # fmt: skip


def _statement_problem(exc: ValueError) -> str:
    text = str(exc)
    if "DSSE payload" in text:
        return "the envelope's payload is not an in-toto statement"
    if "in-toto" in text:
        return "the envelope's payload is not an in-toto statement"
    return "the signed statement does not describe a model"


def _by_certificate(data: bytes, doc: dict[str, Any], trust: Trust) -> Signed:
    from model_signing._signing import sign_certificate, sign_sigstore_pb
    from OpenSSL.crypto import X509StoreContextError

    info = cert_info(_leaf(doc, "certificate"))
    base = {"signer": info.identity, "issuer": info.issuer_dn, "signed_at": info.not_before,
            "signed_at_source": "certificate start (model_signing checks the chain as of this time)",
            "notes": _expiry(info)}  # fmt: skip
    if trust.ca_bundle is None:
        manifest = _under_own_key(doc, _leaf(doc, "certificate"))
        return _signed("model_signing certificate", manifest, trusted=False,
                       reason=f"certificate {info.subject} (issued by {info.issuer_dn}) not checked: no CA bundle "
                              "given", **base)  # fmt: skip
    try:
        verifier = sign_certificate.Verifier(certificate_chain_paths=[trust.ca_bundle])
    except ValueError:
        raise SignatureUnsupported(f"the CA bundle {trust.show('ca_bundle')} holds no PEM certificate") from None
    try:
        manifest = verifier.verify(sign_sigstore_pb.Signature.read(_Text(data)))
    except X509StoreContextError as exc:
        why = str(exc.args[0]) if exc.args else "not trusted"
        raise SignatureError(f"the signing certificate {info.subject} does not chain to the CA bundle "
                             f"{trust.show('ca_bundle')} ({why[:120]})") from None  # fmt: skip
    except InvalidSignature:
        raise SignatureError("the envelope's signature does not match the signing certificate") from None
    except ValueError as exc:
        if "cannot be used for signing" in str(exc):
            raise SignatureError(f"the certificate {info.subject} is not allowed to sign (key usage)") from None
        raise SignatureError(_statement_problem(exc)) from None
    except (KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError):
        raise SignatureError("the bundle is not a model_signing bundle (fields missing or of the wrong type)") from None
    return _signed("model_signing certificate", manifest, trusted=True, **base)


def _expiry(info: CertInfo) -> list[str]:
    if info.not_after < datetime.now(UTC):
        return [f"the signing certificate expired on {info.not_after:%Y-%m-%d %H:%M UTC}; model_signing checks it as "
                f"of its start ({info.not_before:%Y-%m-%d %H:%M UTC}), so it still verifies"]  # fmt: skip
    return []


def _by_sigstore(data: bytes, doc: dict[str, Any], trust: Trust) -> Signed:
    info = cert_info(_leaf(doc, "sigstore"))
    tlog, logged = _log_time(doc)
    who = {"signer": info.identity, "issuer": info.oidc_issuer, "tlog": tlog}
    if trust.trusted_root is None:
        manifest = _under_own_key(doc, _leaf(doc, "sigstore"))
        return _signed("model_signing sigstore (keyless)", manifest, trusted=False, untrusted="unverifiable_offline",
                       reason="no Sigstore trusted root given", signed_at=logged,
                       signed_at_source="transparency log, not verified offline" if logged else "", **who)  # fmt: skip
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    root = trusted_root(trust)
    try:
        bundle = Bundle.from_json(data)
    except (SigstoreError, ValueError, KeyError, TypeError):
        raise SignatureError("the Sigstore bundle cannot be read (malformed or of an unknown version)") from None
    try:
        payload_type, payload = Verifier(trusted_root=root).verify_dsse(bundle, identity_policy(trust))
    except (SigstoreError, ValueError) as exc:
        raise SignatureError(f"the Sigstore bundle does not verify against {trust.show('trusted_root')}: "
                             f"{str(exc)[:160]}") from None  # fmt: skip
    notes = [] if trust.identity else [f"no expected identity given: the signer is {info.identity} "
                                       f"(issuer {info.oidc_issuer}); check that it is the one you expect"]  # fmt: skip
    return _signed("model_signing sigstore (keyless)", _manifest(payload_type, payload), trusted=True,
                   signed_at=logged, signed_at_source="transparency log, verified" if logged else "", notes=notes,
                   **who)  # fmt: skip


def check_bundle(data: bytes, trust: Trust) -> Signed:
    """Check a model_signing bundle (its bytes, already size-capped) with ``trust``.

    Returns:
        The :class:`Signed` record (``trusted`` False when the trust material for its method was not given).

    Raises:
        SignatureError: the bundle does not verify (the reason in one sentence).
        SignatureUnsupported: the key or trust material is of a kind the method cannot use.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("the signature file is not a JSON bundle") from None
    if not isinstance(doc, dict):
        raise SignatureError("the signature file is not a JSON bundle")
    kind = material_kind(doc)
    try:
        if kind == "key":
            return _by_key(data, doc, trust)
        if kind == "certificate":
            return _by_certificate(data, doc, trust)
        return _by_sigstore(data, doc, trust)
    except (UnsupportedAlgorithm, OSError) as exc:
        raise SignatureUnsupported(f"the trust material cannot be used ({type(exc).__name__})") from None
