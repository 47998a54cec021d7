"""kubectl, as containment uses it: list the deployments labelled with a model, scale them, restart them.

kubectl runs only when ``WORKBENCH_KUBECTL`` names it or ``shutil.which("kubectl")`` finds it, always with an
argument list (never a shell). In a dry run the read-only listing still runs (so the printed commands name the real
deployments) and every command that would change the cluster is printed instead of run.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable

__all__ = ["Kube"]

TIMEOUT = 60
_JSONPATH = '{range .items[*]}{.metadata.name}{"\\t"}{.spec.replicas}{"\\n"}{end}'


class Kube:
    """A kubectl wrapper.

    Args:
        namespace: ``-n`` for every command (None: kubectl's current namespace).
        dry_run: print mutating commands instead of running them.
        echo: prints one line.
        kubectl: the executable (default: ``WORKBENCH_KUBECTL``, else ``shutil.which("kubectl")``; None when absent).
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        echo: Callable[[str], None] = print,
        kubectl: str | None = None,
    ) -> None:
        self.kubectl = kubectl or os.environ.get("WORKBENCH_KUBECTL") or shutil.which("kubectl")
        self.namespace = namespace
        self.dry_run = dry_run
        self.echo = echo
        self.errors: list[str] = []

    @property
    def available(self) -> bool:
        return self.kubectl is not None

    def _argv(self, args: list[str]) -> list[str]:
        ns = ["-n", self.namespace] if self.namespace else []
        return [self.kubectl or "kubectl", *args, *ns]

    def _call(self, args: list[str]) -> subprocess.CompletedProcess[str] | None:
        argv = self._argv(args)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)  # noqa: S603 (argument list from kubectl's absolute path, no shell)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.errors.append(f"{shlex.join(argv[:3])}: {exc}")
            return None
        if proc.returncode != 0:
            self.errors.append(f"{shlex.join(argv[:3])}: exit {proc.returncode}: {proc.stderr.strip()[:300]}")
            return None
        return proc

    def deployments(self, selector: str) -> list[tuple[str, int]] | None:
        """``(name, replicas)`` of the deployments matching ``selector``; None when kubectl is absent or fails
        (the reason is in :attr:`errors`)."""
        args = ["get", "deployments", "-l", selector, "-o", f"jsonpath={_JSONPATH}"]
        if not self.available:
            self.errors.append("kubectl not found")
            if self.dry_run:
                self.echo(f"(dry-run) kubectl not found; would run: {shlex.join(self._argv(args))}")
            return None
        proc = self._call(args)
        if proc is None:
            return None
        out = []
        for line in proc.stdout.splitlines():
            name, _, replicas = line.strip().partition("\t")
            if name:
                out.append((name, int(replicas) if replicas.strip().isdigit() else 1))
        return out

    def run(self, args: list[str]) -> bool:
        """Run a mutating command (printed instead in a dry run). True when it succeeded (or was printed)."""
        if self.dry_run:
            self.echo(f"(dry-run) {shlex.join(self._argv(args))}")
            return True
        return self._call(args) is not None
