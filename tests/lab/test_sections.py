"""The lab's scripts rewrite their sections of docs/PERFORMANCE.md (`--doc`): the markers
are there, once each, and a rewrite changes only what lies between them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "PERFORMANCE.md"
# section name -> the script that writes it
SECTIONS = {
    "benchmark": "benchmark.py",
    "overhead": "overhead.py",
    "diagnostics-cost": "diagnostics_cost.py",
}


def load_sections():
    spec = importlib.util.spec_from_file_location("sections", ROOT / "scripts/lab/sections.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SECTIONS)
def test_each_generated_section_is_in_the_performance_doc_once(name):
    text = DOC.read_text()
    assert text.count(f"<!-- {name}:start -->") == 1 and text.count(f"<!-- {name}:end -->") == 1
    body = text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]
    # The command recorded in the section is the script, writing to this doc.
    command = rf"Measured by `python scripts/lab/{SECTIONS[name]} [^`]*--doc docs/PERFORMANCE.md"
    assert re.search(command, body), body[:300]


def test_replace_section_rewrites_only_between_the_markers(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text(DOC.read_text())
    load_sections().replace_section(doc, "overhead", "new table")
    before, after = DOC.read_text(), doc.read_text()
    assert "<!-- overhead:start -->\nnew table\n<!-- overhead:end -->" in after
    head = before.split("<!-- overhead:start -->")[0]
    tail = before.split("<!-- overhead:end -->")[1]
    assert after == f"{head}<!-- overhead:start -->\nnew table\n<!-- overhead:end -->{tail}"
