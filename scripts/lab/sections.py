"""Figures in README come from runs: scripts render them between markers.

<!-- NAME:start -->  ...generated text...  <!-- NAME:end -->
"""

from __future__ import annotations

from pathlib import Path


def replace_section(readme: Path, name: str, text: str) -> None:
    """Replace what lies between the NAME markers of `readme` with `text`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = readme.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"{readme} has no {start} ... {end} section to replace")
    head, _, rest = content.partition(start)
    readme.write_text(f"{head}{start}\n{text}\n{end}{rest.partition(end)[2]}")
