"""The trust options shared by every command that verifies a model's signature (one definition, one check).

``--key``, ``--ca-bundle``, ``--trusted-root``, ``--identity``, ``--issuer`` and ``--signature`` build the
:class:`~workbench.model.trust.Trust` given to :func:`workbench.model.signatures.verify_model_signature`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["build_trust", "trust_options", "trust_parameters"]

_HELP = {
    "key": "PEM public key of the signer (cosign, model_signing key method).",
    "ca_bundle": "PEM CA certificates a model_signing certificate signature must chain to.",
    "trusted_root": "Sigstore trusted_root.json (or client trust config): verify keyless bundles offline.",
    "identity": "Expected Sigstore signer identity (certificate SAN); without it the signer is reported.",
    "issuer": "Expected OIDC issuer of that identity.",
    "signature": "Signature file kept outside the model folder (model_signing bundle, cosign signature/bundle).",
}


def trust_options(*, key: bool = True, signature: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the trust options to a command (``key=False`` when the command defines its own ``--key``)."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        path = click.Path(path_type=Path)
        options = [click.option("--ca-bundle", type=path, help=_HELP["ca_bundle"]),
                   click.option("--trusted-root", type=path, help=_HELP["trusted_root"]),
                   click.option("--identity", help=_HELP["identity"]),
                   click.option("--issuer", help=_HELP["issuer"])]  # fmt: skip
        if key:
            options.insert(0, click.option("--key", type=path, help=_HELP["key"]))
        if signature:
            options.append(click.option("--signature", type=path, help=_HELP["signature"]))
        for option in reversed(options):
            func = option(func)
        return func

    return wrap


def build_trust(
    *,
    key: Path | None = None,
    ca_bundle: Path | None = None,
    trusted_root: Path | None = None,
    identity: str | None = None,
    issuer: str | None = None,
    signature: Path | None = None,
) -> Any:
    """The :class:`Trust` of the options; a named file that does not exist is a usage error (exit 2)."""
    from workbench.model.trust import Trust

    given = {"key": key, "ca_bundle": ca_bundle, "trusted_root": trusted_root, "signature": signature}
    for name, path in given.items():
        if path is not None and not path.is_file():
            option = "--" + name.replace("_", "-")
            raise click.BadParameter(f"{path}: no such file", param_hint=option)
    if issuer and not identity:
        raise click.BadParameter("--issuer needs --identity (the signer it is the issuer of)", param_hint="--issuer")
    return Trust(key=key, ca_bundle=ca_bundle, trusted_root=trusted_root, signature=signature, identity=identity,
                 issuer=issuer, shown={k: str(v) for k, v in given.items() if v is not None})  # fmt: skip


#: option -> the analysis option (``-p``) it sets
_PARAMETER = {"key": "public_key", "ca_bundle": "ca_bundle", "trusted_root": "trusted_root", "signature": "signature",
              "identity": "signer_identity", "issuer": "signer_issuer"}  # fmt: skip


def trust_parameters(given: dict[str, Any]) -> dict[str, Any]:
    """The analysis options (``public_key=...``) of the trust options given, checked like ``-p`` values."""
    from workbench import parameters

    build_trust(**given)  # the same checks as every other command
    return parameters.validate({_PARAMETER[k]: str(v) for k, v in given.items() if v is not None})
