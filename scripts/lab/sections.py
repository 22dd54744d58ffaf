"""Figures in docs/PERFORMANCE.md come from runs: scripts render them between markers.

<!-- NAME:start -->  ...generated text...  <!-- NAME:end -->
"""

from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, name: str, text: str) -> None:
    """Replace what lies between the NAME markers of `doc` with `text`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = doc.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"{doc} has no {start} ... {end} section to replace")
    head, _, rest = content.partition(start)
    doc.write_text(f"{head}{start}\n{text}\n{end}{rest.partition(end)[2]}")
