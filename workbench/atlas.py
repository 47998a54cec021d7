"""MITRE ATLAS techniques the workbench cites, with their names and tactics (for grouping in reports)."""

from __future__ import annotations

__all__ = ["TECHNIQUES", "tactic_of", "technique_name"]

#: technique id -> (name, tactic)
TECHNIQUES: dict[str, tuple[str, str]] = {
    "AML.T0010": ("AI Supply Chain Compromise", "Initial Access"),
    "AML.T0010.001": ("AI Supply Chain Compromise: AI Software", "Initial Access"),
    "AML.T0010.003": ("AI Supply Chain Compromise: Model", "Initial Access"),
    "AML.T0011.000": ("User Execution: Unsafe AI Artifacts", "Execution"),
    "AML.T0011.001": ("User Execution: Malicious Package", "Execution"),
    "AML.T0018": ("Manipulate AI Model", "Persistence"),
    "AML.T0018.000": ("Manipulate AI Model: Poison AI Model", "Persistence"),
    "AML.T0018.002": ("Manipulate AI Model: Embed Malware", "Persistence"),
    "AML.T0031": ("Erode AI Model Integrity", "Impact"),
    "AML.T0025": ("Exfiltration via Cyber Means", "Exfiltration"),
    "AML.T0050": ("Command and Scripting Interpreter", "Execution"),
    "AML.T0072": ("Reverse Shell", "Command and Control"),
    "AML.T0055": ("Unsecured Credentials", "Credential Access"),
}


def technique_name(tid: str) -> str:
    """Human name of an ATLAS technique id (the id itself when unknown)."""
    return TECHNIQUES.get(tid, (tid, ""))[0]


def tactic_of(tid: str) -> str:
    """ATLAS tactic of a technique id, or "Other"."""
    return TECHNIQUES.get(tid, ("", "Other"))[1] or "Other"
