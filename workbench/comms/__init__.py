"""The playbook's three communication drafts (initial alert, stakeholder update, post-incident report).

Filled from the run's conclusions (:mod:`workbench.comms.facts`), rendered from ``templates/comms/*.md.j2`` with
Markdown-safe escaping (:mod:`workbench.comms.markdown`), written to ``OUT/comms/`` by the run
(:mod:`workbench.comms.drafts`). A contract output of the run, so it sits beside it, not in the report package.
"""

from __future__ import annotations

from workbench.comms.drafts import TEMPLATES, CommsContext, build_comms, render_comms, write_comms
from workbench.comms.markdown import Md, RenderedComm, md_escape, todo

__all__ = ["TEMPLATES", "CommsContext", "Md", "RenderedComm", "build_comms", "md_escape", "render_comms", "todo",
           "write_comms"]  # fmt: skip
