"""Rename the package in one step: python scripts/rename.py NEW_NAME [--dry-run].

    python scripts/rename.py my_proj --dry-run    # list what would change
    python scripts/rename.py my_proj              # src/my_proj, my-proj-train, ...

What changes, everywhere under the repository root:
- every path component containing `neuralab` (src/neuralab -> src/my_proj, also
  src/hydra_plugins/neuralab_* and any file named after the package);
- in every text file: `neuralab-` -> `my-proj-` (console scripts use dashes:
  my-proj-train, my-proj-eval), then `neuralab` -> `my_proj` (imports, pyproject's
  name and its `neuralab[sweeps]` self-reference, docs), `NEURALAB` -> `MY_PROJ`
  (environment variables such as NEURALAB_ROOT) and `Neuralab` -> `My_proj`.
Skipped: .git, virtual environments, caches, build outputs, the run outputs and
downloads at the root (logs/, data/, outputs/, multirun/), and binary files.

Nothing is touched when NEW_NAME is not a lowercase Python identifier, is a keyword or
a standard-library module, when the tree holds no src/neuralab package, or when a
renamed path already exists. This script renames itself too: afterwards it renames
from the new name, so it can be run again. Then reinstall: pip install -e ".[dev]".
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path

OLD = "neuralab"
ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
SKIP_ROOT_DIRS = {"logs", "data", "outputs", "multirun", "lightning_logs", "build", "dist", ".whl"}
NAME = re.compile(r"[a-z_][a-z0-9_]*")


class Refused(Exception):
    """Bad input or a tree this script cannot rename: one line, exit status 2."""


def check_name(new: str) -> None:
    if not NAME.fullmatch(new):
        raise Refused(f"NEW_NAME={new!r}: expected a lowercase identifier, [a-z_][a-z0-9_]*")
    if keyword.iskeyword(new) or new in sys.stdlib_module_names:
        raise Refused(f"NEW_NAME={new!r}: a Python keyword or standard-library module")
    if new == OLD:
        raise Refused(f"NEW_NAME={new!r}: the package is already called {OLD}")


def check_tree(root: Path) -> None:
    package, pyproject = root / "src" / OLD / "__init__.py", root / "pyproject.toml"
    if not (package.is_file() and pyproject.is_file()):
        raise Refused(f"{root} is not a {OLD} tree (no src/{OLD}/__init__.py and pyproject.toml)")


def project_files(root: Path) -> list[Path]:
    """Every file and dir under root except the skipped ones, deepest paths first."""
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        for path in folder.iterdir():
            skip = SKIP_ROOT_DIRS if folder == root else set()
            if path.is_symlink() or path.name in SKIP_DIRS or path.name in skip:
                continue
            if path.name.endswith(".egg-info"):
                continue
            found.append(path)
            if path.is_dir():
                stack.append(path)
    return sorted(found, key=lambda p: (-len(p.parts), str(p)))


def replacements(new: str) -> list[tuple[str, str]]:
    """Longest forms first: the dashed console-script prefix before the bare name."""
    dashed = new.replace("_", "-")
    return [
        (f"{OLD}-", f"{dashed}-"),
        (OLD, new),
        (OLD.upper(), new.upper()),
        (OLD.capitalize(), new.capitalize()),
    ]


def rewrite(text: str, new: str) -> str:
    for old, replacement in replacements(new):
        text = text.replace(old, replacement)
    return text


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL byte or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def plan(root: Path, new: str) -> tuple[dict[Path, str], list[tuple[Path, Path]]]:
    """(new contents by file, renames deepest first); refuses renames onto existing paths."""
    contents: dict[Path, str] = {}
    moves: list[tuple[Path, Path]] = []
    for path in project_files(root):
        if path.is_file():
            text = read_text(path)
            if text is not None and rewrite(text, new) != text:
                contents[path] = rewrite(text, new)
        if OLD in path.name:
            target = path.with_name(path.name.replace(OLD, new))
            if target.exists():
                raise Refused(f"{target.relative_to(root)} already exists; nothing was changed")
            moves.append((path, target))
    return contents, moves


def apply(contents: dict[Path, str], moves: list[tuple[Path, Path]]) -> None:
    for path, text in contents.items():
        path.write_text(text, encoding="utf-8")
    for source, target in moves:  # deepest first: a folder moves after what is inside it
        source.rename(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new_name", metavar="NEW_NAME", help="lowercase Python identifier")
    parser.add_argument("--dry-run", action="store_true", help="list the changes, change nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: here)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        check_name(args.new_name)
        check_tree(root)
        contents, moves = plan(root, args.new_name)
    except Refused as err:
        print(f"rename: error: {err}", file=sys.stderr)
        return 2
    verb = "would" if args.dry_run else "will"
    print(f"{verb} rewrite {len(contents)} files and rename {len(moves)} paths")
    for path in sorted(contents):
        print(f"  edit   {path.relative_to(root)}")
    for source, target in sorted(moves):
        print(f"  rename {source.relative_to(root)} -> {target.relative_to(root)}")
    if args.dry_run:
        return 0
    apply(contents, moves)
    dashed = args.new_name.replace("_", "-")
    print(f"done. Next: pip uninstall -y {OLD}; pip install -e '.[dev]'; {dashed}-train; pytest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
