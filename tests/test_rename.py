"""scripts/rename.py: a renamed copy of the repository installs and trains, and the old
name is gone; bad input changes nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from repo_copy import ROOT, copy_repo

SCRIPT = ROOT / "scripts" / "rename.py"
# This file is renamed with the rest of the project: OLD is then the fork's own name, and
# the new name is one that does not contain it (so "no OLD remains" stays testable).
OLD = "neuralab"
NEW = next(name for name in ("acme_lab", "zyx_tool") if OLD not in name)
DASHED = NEW.replace("_", "-")
FAST = [
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "++callbacks.progress_bar=null",
]


def load_rename():
    spec = importlib.util.spec_from_file_location("rename", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def text_files(root: Path) -> dict[Path, str]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            data = path.read_bytes()
            if b"\0" not in data:
                found[path] = data.decode("utf-8", errors="replace")
    return found


# ------------------------------------------------------------ a real copy, renamed
@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("repo"))
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "rename.py"), NEW],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"rename src/{OLD} -> src/{NEW}" in proc.stdout
    return root


def test_no_trace_of_the_old_name_is_left(renamed):
    assert (renamed / "src" / NEW / "__init__.py").is_file()
    assert not (renamed / "src" / OLD).exists()
    paths = [str(p.relative_to(renamed)) for p in renamed.rglob("*") if OLD in p.name.lower()]
    assert not paths, paths
    left = [str(p.relative_to(renamed)) for p, t in text_files(renamed).items() if OLD in t.lower()]
    assert not left, left
    pyproject = (renamed / "pyproject.toml").read_text()
    assert f'name = "{NEW}"' in pyproject
    assert f'{DASHED}-train = "{NEW}.runtime.entry:train_cli"' in pyproject  # dashes
    assert f'"{NEW}[sweeps]"' in pyproject  # the dev extra's self-reference
    assert f"{NEW.upper()}_ROOT" in (renamed / "conf" / "paths" / "default.yaml").read_text()


@pytest.mark.slow  # ~20 s: a venv, an editable install and a fresh training process
def test_the_renamed_package_installs_and_its_train_command_runs(renamed, tmp_path):
    python = _venv_seeing_our_packages(tmp_path / "venv")
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    quiet.pop("PYTHONPATH", None)  # the install, not a path, must provide the package
    install = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run(
        [*install, "-e", str(renamed)], capture_output=True, text=True, env=quiet, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    where = subprocess.run(
        [python, "-c", f"import {NEW}; print({NEW}.__file__)"], capture_output=True, text=True
    )
    assert Path(where.stdout.strip()) == renamed / "src" / NEW / "__init__.py", where.stderr

    workdir = tmp_path / "work"
    workdir.mkdir()
    train = Path(python).parent / f"{DASHED}-train"
    run = subprocess.run(
        [str(train), *FAST], cwd=workdir, capture_output=True, text=True, env=quiet, timeout=300
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    (results,) = workdir.glob("logs/train/runs/*/results.json")
    assert json.loads(results.read_text())["status"] == "ok"
    tree = (results.parent / "config_tree.log").read_text()
    assert f"{NEW}.nets.MLP" in tree  # the config tree: the renamed conf/ was used


def _venv_seeing_our_packages(path: Path) -> str:
    """A fresh venv (no pip of its own) that imports torch, lightning, pip, hatchling...
    from this interpreter's site-packages through a .pth file: nothing is downloaded."""
    venv.create(path, with_pip=False)
    python = str(path / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (Path(purelib) / "_outer_site_packages.pth").write_text("\n".join(ours) + "\n")
    return python


# ------------------------------------------------------------ a small fake tree
@pytest.fixture
def fake(tmp_path) -> Path:
    files = {
        f"src/{OLD}/__init__.py": f'"""{OLD}."""\n',
        f"src/{OLD}/data/sources.py": f"from {OLD}.errors import ConfigError\n",
        "pyproject.toml": (
            f'name = "{OLD}"\ndev = ["{OLD}[sweeps]"]\n{OLD}-train = "{OLD}.train:main"\n'
        ),
        "conf/paths/default.yaml": f"root_dir: ${{oc.env:{OLD.upper()}_ROOT,.}}\n",
        "logs/train/run.log": f"{OLD}-train ran\n",
        "data/notes.txt": f"{OLD}\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "image.bin").write_bytes(b"\0\1" + OLD.encode())
    return tmp_path


def test_rewrites_every_form_of_the_name_and_skips_outputs(fake, capsys):
    before = snapshot(fake)
    assert load_rename().main([NEW, "--root", str(fake)]) == 0
    pyproject = (fake / "pyproject.toml").read_text()
    assert (
        pyproject
        == f'name = "{NEW}"\ndev = ["{NEW}[sweeps]"]\n{DASHED}-train = "{NEW}.train:main"\n'
    )
    expected = f"from {NEW}.errors import ConfigError\n"
    assert (fake / "src" / NEW / "data" / "sources.py").read_text() == expected  # not skipped
    assert f"{NEW.upper()}_ROOT" in (fake / "conf/paths/default.yaml").read_text()
    after = snapshot(fake)
    for kept in ("logs/train/run.log", "data/notes.txt", "image.bin"):
        assert after[kept] == before[kept], kept
    assert "done. Next:" in capsys.readouterr().out


def test_dry_run_lists_the_changes_and_changes_nothing(fake, capsys):
    before = snapshot(fake)
    assert load_rename().main([NEW, "--dry-run", "--root", str(fake)]) == 0
    out = capsys.readouterr().out
    assert "would rewrite 4 files and rename 1 paths" in out
    assert f"rename src/{OLD} -> src/{NEW}" in out and "edit   pyproject.toml" in out
    assert snapshot(fake) == before


@pytest.mark.parametrize("name", ["My_Proj", "my-proj", "1proj", "", "class", "json", OLD])
def test_refuses_a_bad_name_and_touches_nothing(fake, capsys, name):
    before = snapshot(fake)
    assert load_rename().main([name, "--root", str(fake)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rename: error: NEW_NAME={name!r}: ") and err.count("\n") == 1
    assert snapshot(fake) == before


def test_refuses_an_existing_target_and_another_tree(fake, tmp_path_factory, capsys):
    (fake / "src" / NEW).mkdir()
    before = snapshot(fake)
    assert load_rename().main([NEW, "--root", str(fake)]) == 2
    assert f"src/{NEW} already exists" in capsys.readouterr().err
    assert snapshot(fake) == before
    other = tmp_path_factory.mktemp("other")
    assert load_rename().main([NEW, "--root", str(other)]) == 2
    assert f"is not a {OLD} tree" in capsys.readouterr().err
