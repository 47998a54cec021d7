"""What a long incident's timeline puts into the report's drafts: the response steps are capped and counted."""

from __future__ import annotations

from pathlib import Path

from tests.timeline.test_export_equivalence import _generated_case
from workbench.comms.facts import MAX_STEP_LINES, facts_of
from workbench.investigation import Investigation


def test_drafts_list_the_first_steps_and_count_the_rest(tmp_path: Path):
    inv = Investigation.open(_generated_case(tmp_path / "case"), out_dir=tmp_path / "out")
    steps = sum(1 for e in inv.events if e.kind == "ir:action" and e.extra.get("step"))
    assert steps > MAX_STEP_LINES
    details = facts_of(inv, inv.generated_at).details
    assert len(details) == MAX_STEP_LINES + 1
    assert details[-1].startswith(f"first {MAX_STEP_LINES} of ") and details[-1].endswith("in timeline.jsonl")
    alert = (inv.out_dir / "comms" / "initial_alert.md").read_text(encoding="utf-8")
    assert "response steps; the full list is in timeline.jsonl" in alert
    assert alert.count("ISOLATE: ") <= MAX_STEP_LINES
