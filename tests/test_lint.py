"""Conventions a forker relies on: ruff passes on the whole tree, CI runs README's test
command, and machine-specific files and run outputs stay out of git."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml
from repo_copy import ROOT

pytestmark = pytest.mark.fast  # the core contract: pytest -m fast


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_passes_on_the_whole_tree(command):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"ruff {' '.join(command)}:\n{proc.stdout}{proc.stderr}"


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\n```bash\n(.+)\n```", readme)
    assert match, "README has no <!-- test-command --> block"
    return match.group(1)


def test_github_workflow_runs_readme_test_command_and_ruff():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert _readme_test_command() in [r.strip() for r in runs], runs
    assert any("ruff check" in r for r in runs) and any("ruff format --check" in r for r in runs)


def test_pre_commit_runs_ruff_and_the_basic_hooks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "trailing-whitespace", "check-yaml"} <= hooks


def test_gitignore_keeps_local_settings_and_outputs_out_but_not_code(tmp_path):
    """Checked in a scratch repository holding only .gitignore: no need for this one's .git."""
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ignored = ["conf/local/default.yaml", ".env", "logs/train/x.txt", "data/mnist/x.gz"]
    kept = ["src/neuralab/data/module.py", "conf/data/digits.yaml", "tests/data/test_idx.py"]
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", *ignored, *kept],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.stdout.split() == ignored


# --- README is the front door; the reference lives in docs/ -----------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors (lowercase, punctuation dropped, spaces -> '-', repeats
    numbered) and explicit <a id="..."> anchors, code blocks aside."""
    anchors, seen, fenced = set(re.findall(r'<a id="([^"]+)"', markdown)), {}, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(f"{slug}-{n}" if n else slug)
    return anchors


def _pages() -> list:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_is_a_front_door_of_at_most_300_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_to_a_file_and_its_anchor(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...: not checked here
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
            broken.append(f"{target}: no such anchor")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"
