"""Bad input ends early and clearly: one message naming the setting and what is allowed,
a non-zero exit, no training started, and nothing written outside the run's own dir.

Every case goes through the real entry point (`run_cli`). neuralab's own checks end
with exit status 2 and one `neuralab: error: <setting>=<value> is not allowed; expected
<allowed>` line; a wrong option name is refused by Hydra while composing (before any
run dir exists), with its own message listing the options there are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Imported at collection on purpose: lightning's import-time StreamHandler then holds
# pytest's session stream, not the capsys stream of whichever test imported it first,
# which is closed when that test ends (later runs would print "--- Logging error ---"
# with a traceback).
import neuralab.eval  # noqa: F401
import neuralab.train  # noqa: F401

# The only files a refused run may leave: Hydra's saved config and the run's log.
RUN_DIR_FILES = {"train": {".hydra", "train.log"}, "eval": {".hydra", "eval.log"}}


@dataclass
class Case:
    id: str
    task: str
    overrides: list[str]  # "{tmp}" stands for the test's working dir
    expect: list[str]  # substrings of the message: the setting and the allowed values
    hydra: bool = False  # refused by Hydra's config composition, not by neuralab
    setup: Callable[[Path, bytes], None] | None = field(default=None, repr=False)


def _text_file(tmp: Path, _: bytes) -> None:
    (tmp / "notes.ckpt").write_text("these are notes, not a checkpoint\n")


def _truncated(tmp: Path, checkpoint: bytes) -> None:
    (tmp / "cut.ckpt").write_bytes(checkpoint[: len(checkpoint) // 2])


def _empty_run_dir(tmp: Path, _: bytes) -> None:
    (tmp / "old_run" / ".hydra").mkdir(parents=True)  # a run dir, but no checkpoints/


def _empty_data_dir(tmp: Path, _: bytes) -> None:
    (tmp / "no_data").mkdir()


CASES = [
    Case(
        "model=nosuch",
        "train",
        ["model=nosuch"],
        ["Could not find 'model/nosuch'", "Available options", "mlp_dropout", "perceptron"],
        hydra=True,
    ),
    Case(
        "optimizer=nosuch",
        "train",
        ["optimizer=nosuch"],
        ["Could not find 'optimizer/nosuch'", "Available options", "adam", "sgd"],
        hydra=True,
    ),
    Case("lr=0", "train", ["optimizer.lr=0"], ["optimizer.lr=0 ", "a number > 0"]),
    Case("lr<0", "train", ["optimizer.lr=-0.1"], ["optimizer.lr=-0.1 ", "a number > 0"]),
    Case(
        "weight_decay<0",
        "train",
        ["optimizer.weight_decay=-1"],
        ["optimizer.weight_decay=-1 ", "a number >= 0"],
    ),
    Case("dropout=1", "train", ["model.dropout=1.0"], ["model.dropout=1.0 ", "[0, 1)"]),
    Case("dropout<0", "train", ["model.dropout=-0.1"], ["model.dropout=-0.1 ", "[0, 1)"]),
    Case(
        "hidden_sizes=[]",
        "train",
        ["model.hidden_sizes=[]"],
        ["model.hidden_sizes=[] ", "a non-empty list of positive integers"],
    ),
    Case(
        "hidden_sizes<0",
        "train",
        ["model.hidden_sizes=[64,-1]"],
        ["model.hidden_sizes=[64, -1] ", "a non-empty list of positive integers"],
    ),
    Case(
        "activation",
        "train",
        ["model.activation=nosuch"],
        [
            "model.activation='nosuch'",
            "one of: elu, gelu, identity, leaky_relu, relu, selu, sigmoid, silu, tanh",
        ],
    ),
    Case(
        "norm",
        "train",
        ["model.norm=nosuch"],
        ["model.norm='nosuch'", "one of: batch, layer, none"],
    ),
    Case("batch_size=0", "train", ["data.batch_size=0"], ["data.batch_size=0 ", "an integer >= 1"]),
    Case(
        "init.std=0", "train", ["init=normal", "init.std=0"], ["init.std=0 ", "a positive number"]
    ),
    Case(
        "mse-on-classes",
        "train",
        ["loss=mse"],
        ["loss='mse'", "a classification loss", "bce, cross_entropy"],
    ),
    Case(
        "bce-on-10-classes",
        "train",
        ["loss=bce"],
        ["loss='bce'", "cross_entropy", "2 classes", "has 10"],
    ),
    Case(
        "class_weights-length",
        "train",
        ["loss.class_weights=[1,2]"],
        ["loss.class_weights=[1, 2] ", "'balanced' or 10 numbers"],
    ),
    Case(
        "missing-data-file",
        "train",
        ["data=mnist", "data.params.data_dir={tmp}/no_data", "data.params.download=false"],
        [
            "data.params.data_dir=",
            "no_data",
            "an existing file",
            "set data.params.download=true or place the IDX files there",
        ],
        setup=_empty_data_dir,
    ),
    Case(
        "clip<0",
        "train",
        ["trainer.gradient_clip_val=-1"],
        ["trainer.gradient_clip_val=-1 ", "null or a number > 0"],
    ),
    Case(
        "clip-algorithm",
        "train",
        ["trainer.gradient_clip_algorithm=nosuch"],
        ["trainer.gradient_clip_algorithm='nosuch'", "one of: norm, value"],
    ),
    Case(
        "eval-no-such-ckpt",
        "eval",
        ["ckpt_path={tmp}/nosuch.ckpt"],
        ["ckpt_path=", "nosuch.ckpt", "an existing checkpoint file"],
    ),
    Case(
        "eval-text-file",
        "eval",
        ["ckpt_path={tmp}/notes.ckpt"],
        ["ckpt_path=", "notes.ckpt", "a checkpoint written by neuralab-train"],
        setup=_text_file,
    ),
    Case(
        "eval-truncated-ckpt",
        "eval",
        ["ckpt_path={tmp}/cut.ckpt"],
        ["ckpt_path=", "cut.ckpt", "a checkpoint written by neuralab-train"],
        setup=_truncated,
    ),
    Case(
        "eval-run-dir-without-ckpt",
        "eval",
        ["run_dir={tmp}/old_run"],
        ["run_dir=", "old_run", "checkpoints/best.ckpt or last.ckpt"],
        setup=_empty_run_dir,
    ),
    Case(
        "eval-nothing-given",
        "eval",
        [],
        ["ckpt_path / run_dir=(None, None)", "exactly one of them"],
    ),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> bytes:
    """The bytes of a real checkpoint, from one quick epoch (fast_dev_run saves none)."""
    from neuralab.train import main

    root = tmp_path_factory.mktemp("trained")
    argv = [
        "neuralab-train",
        "trainer.max_epochs=1",
        "logger=none",
        "test=false",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "++callbacks.progress_bar=null",
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(sys, "argv", argv)
        main()
    (path,) = root.glob("logs/train/runs/*/checkpoints/last.ckpt")
    return path.read_bytes()


def _snapshot(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_before_training(case: Case, run_cli, tmp_path, request):
    if case.setup is not None:
        data = request.getfixturevalue("checkpoint") if case.setup is _truncated else b""
        case.setup(tmp_path, data)
    before = _snapshot(tmp_path)

    overrides = [o.format(tmp=tmp_path) for o in case.overrides]
    run = run_cli(case.task, *overrides)

    assert run.code != 0, run.out
    for text in case.expect:
        assert text in run.out, f"{text!r} not in:\n{run.out}"
    assert "Traceback" not in run.out, run.out
    if not case.hydra:
        # neuralab's own check: exit 2 and one line naming setting, value and allowed values
        assert run.code == 2, run.out
        errors = [line for line in run.out.splitlines() if line.startswith("neuralab: error: ")]
        assert len(errors) == 1, run.out
        assert " is not allowed; expected " in errors[0]
        assert all(text in errors[0] for text in case.expect), errors[0]

    # No training started: no checkpoint, no TensorBoard events anywhere under tmp.
    new = _snapshot(tmp_path) - before
    assert not [p for p in new if p.suffix == ".ckpt" or p.name == "checkpoints"], new
    assert not [p for p in new if p.name.startswith("events.out.tfevents")], new
    # Nothing outside logs/, and under logs/ only this one run's own dir.
    assert all(p.parts[0] == "logs" for p in new), sorted(new)
    run_dirs = run.run_dirs(case.task)
    if case.hydra:
        assert not new, sorted(new)  # refused while composing: no run dir at all
    else:
        assert len(run_dirs) == 1, sorted(new)
        (run_dir,) = run_dirs
        assert {p.name for p in run_dir.iterdir()} == RUN_DIR_FILES[case.task]
        inside = {run_dir.relative_to(tmp_path), *run_dir.relative_to(tmp_path).parents}
        assert all(p in inside or run_dir.relative_to(tmp_path) in p.parents for p in new), sorted(
            new
        )
    if case.setup is _empty_data_dir:
        assert not any((tmp_path / "no_data").iterdir())  # no download was attempted
