"""A copy of this repository in a temp dir, for the tests that fork it (test_fork.py,
test_rename.py). Not a test module: pytest collects only test_*.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Without git: what .gitignore keeps out. Run outputs and downloads only at the root
# (src/<package>/data/ is code).
SKIP = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
SKIP_AT_ROOT = {"logs", "data", "outputs", "multirun", "lightning_logs", "build", "dist", ".whl"}


def repo_files() -> list[Path]:
    """Tracked files and untracked ones git does not ignore (relative paths)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [Path(n) for n in listed.split("\0") if n]
        return [n for n in names if (ROOT / n).is_file()]  # deleted but still in the index
    return [p.relative_to(ROOT) for p in _walk(ROOT)]


def _walk(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.iterdir()):
        skip = path.name in SKIP or (folder == ROOT and path.name in SKIP_AT_ROOT)
        if skip or path.name.endswith(".egg-info") or path.is_symlink():
            continue
        found.extend(_walk(path) if path.is_dir() else [path])
    return found


def copy_repo(dest: Path) -> Path:
    """The repository's files under `dest`; returns `dest`."""
    for name in repo_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def env_with_src(src: Path) -> dict[str, str]:
    """The environment of a child process importing the package from `src` first."""
    return {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
