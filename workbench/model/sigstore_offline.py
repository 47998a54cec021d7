"""Sigstore verification offline: the user's trusted root, and the identity policy (expected, or reported).

sigstore-python is only ever given a trusted root read from a file (a ``trusted_root.json`` or a client trust
configuration wrapping one), never one fetched through TUF, so verification never touches the network.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.model.cosign_blob import SignatureUnsupported
from workbench.model.trust import Trust, read_trust

__all__ = ["identity_policy", "trusted_root"]


def trusted_root(trust: Trust) -> Any:
    """The :class:`sigstore.models.TrustedRoot` of ``trust.trusted_root``.

    Raises:
        SignatureUnsupported: the file is not a Sigstore trusted root or client trust configuration.
    """
    from sigstore.models import ClientTrustConfig, TrustedRoot
    from sigstore_models.trustroot.v1 import TrustedRoot as _TrustedRootPb

    if trust.trusted_root is None:
        raise SignatureUnsupported("no Sigstore trusted root given")
    raw = read_trust(trust.trusted_root)
    try:
        media = str(json.loads(raw).get("mediaType", ""))
        if "clienttrustconfig" in media:
            return ClientTrustConfig.from_json(raw.decode("utf-8")).trusted_root
        return TrustedRoot(_TrustedRootPb.from_json(raw))
    except Exception as exc:  # noqa: BLE001 - any parse failure of the user's trust file is one message
        raise SignatureUnsupported(f"the trusted root {trust.show('trusted_root')} is not a Sigstore trusted root "
                                   f"({type(exc).__name__})") from None  # fmt: skip


class _ReportIdentity:
    """Accepts any identity: the verified identity is reported instead of enforced (no expected one was given)."""

    def verify(self, cert: Any) -> None:
        return None


def identity_policy(trust: Trust) -> Any:
    """sigstore's ``Identity`` policy for the expected signer, or one that accepts any (the signer is reported)."""
    from sigstore.verify import policy

    if trust.identity:
        return policy.Identity(identity=trust.identity, issuer=trust.issuer)
    return _ReportIdentity()
