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
