"""Run the real entry points (`neuralab-train`, `neuralab-eval`) inside pytest.

`run_cli("train", "model=mlp", ...)` calls the same hydra.main function the
console script calls, with sys.argv set, from a temporary working dir (so
logs/ lands there). It returns the exit code, the output and the run dir.
Multi-process runs (ddp) go through `run_subprocess`, since Lightning
re-executes sys.argv for extra ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Imported once here, not inside a test: lightning attaches its log handler to the
# stderr of whichever test imports it first, and that stream closes with the test.
import neuralab.eval
import neuralab.train

# A forker's own code, kept as fixtures (a Lightning-idiom module, a conv net): their
# package is importable and their yamls join conf/ through Hydra's search path.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES / "src"))
FORK_CONF = f"hydra.searchpath=[file://{FIXTURES / 'conf'}]"

# Small and quick everywhere: tests assert behaviour, not accuracy at scale.
FAST = {
    "train": [
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "++callbacks.progress_bar=null",
    ],
    "eval": ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"],
}


@dataclass
class Run:
    code: int
    out: str  # stdout and stderr
    root: Path  # the working dir: logs/ is under it
    err: str = ""  # stderr alone (in-process runs)

    def run_dirs(self, task: str = "train") -> list[Path]:
        found = sorted((self.root / "logs" / task).glob("runs/*")) + sorted(
            (self.root / "logs" / task).glob("multiruns/*/*")
        )
        return [p for p in found if p.is_dir() and (p / ".hydra").is_dir()]

    @property
    def run_dir(self) -> Path:
        dirs = self.run_dirs("train") or self.run_dirs("eval")
        assert len(dirs) == 1, f"expected one run dir, found {dirs}\n{self.out}"
        return dirs[0]

    def results(self, run_dir: Path | None = None) -> dict:
        return json.loads(((run_dir or self.run_dir) / "results.json").read_text())


def _entry(task: str):
    return {"train": neuralab.train.main, "eval": neuralab.eval.main}[task]


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys):
    """Call neuralab-<task> in-process with the given overrides, from tmp_path."""
    monkeypatch.chdir(tmp_path)

    def run(task: str, *overrides: str, fast: bool = True) -> Run:
        argv = [f"neuralab-{task}", *overrides, *(FAST[task] if fast else [])]
        monkeypatch.setattr(sys, "argv", argv)
        code = 0
        try:
            _entry(task)()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Run(code, captured.out + captured.err, tmp_path, captured.err)

    return run


def train_in(root: Path, *overrides: str) -> None:
    """neuralab-train in-process from `root`, failing the test on a non-zero exit.

    For module-scoped fixtures, where run_cli's function-scoped monkeypatch is not
    available (one training run shared by several tests).
    """
    root.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(sys, "argv", ["neuralab-train", *overrides, *FAST["train"]])
        try:
            neuralab.train.main()
        except SystemExit as exc:
            assert not exc.code, f"neuralab-train exited with {exc.code}"


def run_subprocess(args: list[str], cwd: Path, timeout: int = 600) -> Run:
    """Run a console script in a fresh process (needed for multi-process DDP)."""
    path = os.pathsep.join(filter(None, [str(FIXTURES / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout + proc.stderr, cwd)


class EventsByName:
    """A run's EventAccumulator read under the names the code logs (`val/loss`,
    `grad_norm/layer00_...`), whatever TensorBoard shows them as (runtime/tags.py)."""

    def __init__(self, events):
        from neuralab.runtime.tags import metric_name

        self.events, self.path = events, events.path
        self._tags = {
            kind: {metric_name(t): t for t in tags}
            for kind, tags in events.Tags().items()
            if isinstance(tags, list)
        }

    def Tags(self) -> dict:  # noqa: N802 -- EventAccumulator's names
        return {**self.events.Tags(), **{k: sorted(v) for k, v in self._tags.items()}}

    def Scalars(self, name: str):  # noqa: N802
        return self.events.Scalars(self._tags["scalars"].get(name, name))

    def Histograms(self, name: str):  # noqa: N802
        return self.events.Histograms(self._tags["histograms"].get(name, name))

    def Images(self, name: str):  # noqa: N802
        return self.events.Images(self._tags["images"].get(name, name))

    def __getattr__(self, name: str):  # SummaryMetadata, Graph, ...: as they are
        return getattr(self.events, name)
