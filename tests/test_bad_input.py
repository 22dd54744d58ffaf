"""Bad input ends early and clearly: one message naming the setting and what is allowed,
a non-zero exit, no training started, and nothing written: no run dir, no sweep dir,
no half-file (an earlier run's dir that `resume=true` picked keeps exactly its files).

Every case goes through the real entry point (`run_cli`). neuralab's own checks end
with exit status 2 and one `neuralab: error: <setting>=<value> is not allowed; expected
<allowed>` line, printed once and before the config tree; a wrong option name is
refused by Hydra while composing (before any run dir exists), with its own message
listing the options there are.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

# Imported at collection on purpose: lightning's import-time StreamHandler then holds
# pytest's session stream, not the capsys stream of whichever test imported it first,
# which is closed when that test ends (later runs would print "--- Logging error ---"
# with a traceback).
import neuralab.eval  # noqa: F401
import neuralab.train  # noqa: F401

NO_GPU = not torch.cuda.is_available()


@dataclass
class Case:
    id: str
    task: str
    overrides: list[str]  # "{tmp}" stands for the test's working dir
    expect: list[str]  # substrings of the message: the setting and the allowed values
    hydra: bool = False  # refused by Hydra's config composition, not by neuralab
    setup: Callable[[Path, bytes], None] | None = field(default=None, repr=False)
    needs_non_root: bool = False  # root reads (writes) a chmod 000 (555) dir anyway
    only_if: bool = True  # False: the case does not apply on this machine (it has a GPU)


def _text_file(tmp: Path, _: bytes) -> None:
    (tmp / "notes.ckpt").write_text("these are notes, not a checkpoint\n")


def _truncated(tmp: Path, checkpoint: bytes) -> None:
    (tmp / "cut.ckpt").write_bytes(checkpoint[: len(checkpoint) // 2])


def _empty_run_dir(tmp: Path, _: bytes) -> None:
    (tmp / "old_run" / ".hydra").mkdir(parents=True)  # a run dir, but no checkpoints/


def _empty_data_dir(tmp: Path, _: bytes) -> None:
    (tmp / "no_data").mkdir()


def _corrupt(tmp: Path, checkpoint: bytes) -> None:
    """A whole file with 64 bytes flipped inside a tensor (torch.load alone would accept it)."""
    mid = len(checkpoint) // 2
    flipped = bytes(b ^ 0xFF for b in checkpoint[mid : mid + 64])
    (tmp / "flipped.ckpt").write_bytes(checkpoint[:mid] + flipped + checkpoint[mid + 64 :])


def _real(tmp: Path, checkpoint: bytes) -> None:
    (tmp / "real.ckpt").write_bytes(checkpoint)


def _other_net_config(tmp: Path, checkpoint: bytes) -> None:
    """Weights of the default net under a saved config that says hidden_sizes=[32]."""
    _real(tmp, checkpoint)
    loaded = torch.load(tmp / "real.ckpt", weights_only=True)
    loaded["neuralab_config"]["model"]["hidden_sizes"] = [32]
    torch.save(loaded, tmp / "tampered.ckpt")


def _old_run(tmp: Path, checkpoint: bytes) -> None:
    """A run dir (as resume=true would pick) whose last.ckpt is the given bytes."""
    (tmp / "logs/train/runs/old/checkpoints").mkdir(parents=True)
    (tmp / "logs/train/runs/old/checkpoints/last.ckpt").write_bytes(checkpoint)


def _old_run_cut(tmp: Path, checkpoint: bytes) -> None:
    _old_run(tmp, checkpoint[: len(checkpoint) // 2])


def _file_as_data_dir(tmp: Path, _: bytes) -> None:
    (tmp / "a_file").write_text("not a directory\n")


def _real_and_a_file(tmp: Path, checkpoint: bytes) -> None:
    _real(tmp, checkpoint)
    _file_as_data_dir(tmp, checkpoint)


def _unreadable_data_dir(tmp: Path, _: bytes) -> None:
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0)


def _read_only_dir(tmp: Path, _: bytes) -> None:
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0o555)


def _empty_file(tmp: Path, _: bytes) -> None:
    (tmp / "empty.ckpt").write_bytes(b"")


def _foreign_zip(tmp: Path, _: bytes) -> None:
    with zipfile.ZipFile(tmp / "archive.ckpt", "w") as archive:
        archive.writestr("readme.txt", "a zip archive, not a checkpoint")


def _foreign_pickle(tmp: Path, _: bytes) -> None:
    """A torch file holding objects weights_only refuses (torch would advise
    weights_only=False, i.e. running the file's code)."""
    torch.save({"when": datetime.date(2020, 1, 1)}, tmp / "objects.ckpt")


NEEDS_CHECKPOINT = (
    _truncated,
    _corrupt,
    _real,
    _other_net_config,
    _old_run,
    _old_run_cut,
    _real_and_a_file,
)
OLD_RUN = "hydra.run.dir={tmp}/logs/train/runs/old"
EPOCHS = "an integer >= 1, or -1 (no limit) with trainer.max_steps > 0 or trainer.max_time set"
EVAL_TAKES = "a setting neuralab-eval takes from the command line (ckpt_path, run_dir, trainer"


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
    # --- runs that survive: resume, checkpoints, monitors, data dirs (docs/SURVIVAL.md) ---
    Case(
        "unknown-key",
        "train",
        ["model.nosuch=1"],
        ["Could not override 'model.nosuch'", "Key 'nosuch' is not in struct"],
        hydra=True,
    ),
    Case(
        "experiment=nosuch",
        "train",
        ["experiment=nosuch"],
        ["Could not find 'experiment/nosuch'", "Available options", "perceptron_gates"],
        hydra=True,
    ),
    Case(
        "scheduler-monitor-never-logged",
        "train",
        ["scheduler=plateau", "scheduler.monitor=val/nosuch"],
        ["scheduler.monitor='val/nosuch'", "a metric logged for classification", "val/acc_best"],
    ),
    Case(
        "monitor-never-logged",
        "train",
        ["data=diabetes", "monitor.metric=val/acc"],
        ["monitor.metric='val/acc'", "a metric logged for regression", "val/mae, val/mae_best"],
    ),
    Case(
        "data-dir-is-a-file",
        "train",
        ["data=mnist", "data.params.data_dir={tmp}/a_file"],
        ["data.params.data_dir=", "a_file", "a directory (this is a file)"],
        setup=_file_as_data_dir,
    ),
    Case(
        "data-dir-unreadable",
        "train",
        ["data=mnist", "data.params.data_dir={tmp}/locked"],
        ["data.params.data_dir=", "locked", "a directory this user can read"],
        setup=_unreadable_data_dir,
        needs_non_root=True,
    ),
    Case(
        "train-text-ckpt",
        "train",
        ["ckpt_path={tmp}/notes.ckpt"],
        ["ckpt_path=", "notes.ckpt", "a checkpoint written by neuralab-train"],
        setup=_text_file,
    ),
    Case(
        "train-truncated-ckpt",
        "train",
        ["ckpt_path={tmp}/cut.ckpt"],
        ["ckpt_path=", "cut.ckpt", "a checkpoint written by neuralab-train", "truncated"],
        setup=_truncated,
    ),
    Case(
        "train-corrupt-ckpt",
        "train",
        ["ckpt_path={tmp}/flipped.ckpt"],
        ["ckpt_path=", "flipped.ckpt", "corrupt: checksum mismatch"],
        setup=_corrupt,
    ),
    Case(
        "train-ckpt-of-another-net",
        "train",
        ["ckpt_path={tmp}/real.ckpt", "model.hidden_sizes=[32]"],
        [
            "ckpt_path=",
            "real.ckpt",
            "a checkpoint of the configured model",
            "model.hidden_sizes=[128, 64] in the checkpoint, [32] here",
        ],
        setup=_real,
    ),
    Case(
        "resume-ckpt-of-another-net",
        "train",
        [OLD_RUN, "resume=true", "model.hidden_sizes=[32]"],
        ["resume=", "last.ckpt", "a checkpoint of the configured model", "[32] here"],
        setup=_old_run,
    ),
    Case(
        "resume-other-training-config",
        "train",
        [OLD_RUN, "resume=true", "optimizer.lr=0.5"],
        ["resume=", "a checkpoint trained with this config", "optimizer.lr=0.001 in the"],
        setup=_old_run,
    ),
    Case(
        "resume-truncated-last-ckpt",
        "train",
        [OLD_RUN, "resume=true"],
        ["resume=", "last.ckpt", "a checkpoint written by neuralab-train"],
        setup=_old_run_cut,
    ),
    Case(
        "resume-and-ckpt_path",
        "train",
        ["resume=true", "ckpt_path={tmp}/real.ckpt"],
        ["resume=True ", "resume=true without ckpt_path", "without resume"],
        setup=_real,
    ),
    Case("resume=maybe", "train", ["resume=maybe"], ["resume='maybe' ", "true or false"]),
    Case(
        "divergence-check-every-0",
        "train",
        ["divergence.check_every_n_steps=0"],
        ["divergence.check_every_n_steps=0 ", "an integer >= 1"],
    ),
    Case(
        "eval-corrupt-ckpt",
        "eval",
        ["ckpt_path={tmp}/flipped.ckpt"],
        ["ckpt_path=", "flipped.ckpt", "corrupt: checksum mismatch"],
        setup=_corrupt,
    ),
    Case(
        "eval-ckpt-weights-of-another-net",
        "eval",
        ["ckpt_path={tmp}/tampered.ckpt"],
        ["ckpt_path=", "weights matching the saved model config"],
        setup=_other_net_config,
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
        ["ckpt_path=", "notes.ckpt", "a checkpoint written by neuralab-train", "a text file"],
        setup=_text_file,
    ),
    Case(
        "eval-truncated-ckpt",
        "eval",
        ["ckpt_path={tmp}/cut.ckpt"],
        ["ckpt_path=", "cut.ckpt", "a checkpoint written by neuralab-train", "truncated"],
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
    # --- issue 17: types, epochs, devices, log dirs, eval overrides, foreign files ---
    Case("seed=abc", "train", ["seed=abc"], ["seed='abc' ", "an integer (the default is 42)"]),
    Case("seed<0", "train", ["seed=-1"], ["seed=-1 ", "an integer in [0, 4294967295]"]),
    Case("seed=1.5", "train", ["seed=1.5"], ["seed=1.5 ", "an integer in [0, 4294967295]"]),
    Case("lr=abc", "train", ["optimizer.lr=abc"], ["optimizer.lr='abc' ", "a number"]),
    Case("lr=true", "train", ["optimizer.lr=true"], ["optimizer.lr=True ", "a number"]),
    Case(
        "batch_size=abc",
        "train",
        ["data.batch_size=abc"],
        ["data.batch_size='abc' ", "an integer (the default is"],
    ),
    Case(
        "patience=[1]",
        "train",
        ["callbacks.early_stopping.patience=[1]"],
        ["callbacks.early_stopping.patience=", "an integer (the default is 10)"],
    ),
    Case("max_epochs=0", "train", ["trainer.max_epochs=0"], ["trainer.max_epochs=0 ", EPOCHS]),
    Case("max_epochs=-1", "train", ["trainer.max_epochs=-1"], ["trainer.max_epochs=-1 ", EPOCHS]),
    Case("max_epochs=-5", "train", ["trainer.max_epochs=-5"], ["trainer.max_epochs=-5 ", EPOCHS]),
    Case(
        "max_epochs=abc",
        "train",
        ["trainer.max_epochs=abc"],
        ["trainer.max_epochs='abc' ", "an integer (the default is 20)"],
    ),
    Case(
        "trainer=gpu-without-gpu",
        "train",
        ["trainer=gpu"],
        ["trainer.accelerator='gpu' ", "one of auto, cpu", "(no gpu here)"],
        only_if=NO_GPU,
    ),
    Case(
        "trainer=ddp-without-gpu",
        "train",
        ["trainer=ddp"],
        ["trainer.accelerator='gpu' ", "(no gpu here)"],
        only_if=NO_GPU,
    ),
    Case(
        "accelerator=tpu",
        "train",
        ["trainer.accelerator=tpu"],
        ["trainer.accelerator='tpu' ", "one of: auto, cpu, gpu, cuda, mps"],
    ),
    Case(
        "devices=0",
        "train",
        ["trainer.devices=0"],
        ["trainer.devices=0 ", "a count >= 1, -1 or auto"],
    ),
    Case(
        "cpu-devices-list",
        "train",
        ["trainer=cpu", "trainer.devices=[0,1]"],
        ["trainer.devices=[0, 1] ", "a number of CPU processes >= 1"],
    ),
    Case(
        "gpu-devices-beyond-machine",
        "train",
        ["trainer.accelerator=auto", "trainer.devices=[64]"],
        ["trainer.devices=[64] "],
        only_if=torch.cuda.device_count() < 64 and not NO_GPU,
    ),
    Case(
        "strategy=nosuch",
        "train",
        ["+trainer.strategy=nosuch"],
        ["trainer.strategy='nosuch' ", "one of: auto, ", "ddp_notebook"],
    ),
    Case(
        "log-dir-under-a-file",
        "train",
        ["paths.log_dir={tmp}/a_file/logs"],
        ["paths.log_dir=", "a directory that can be created", "a_file is a file"],
        setup=_file_as_data_dir,
    ),
    Case(
        "log-dir-read-only",
        "train",
        ["paths.log_dir={tmp}/locked/logs"],
        ["paths.log_dir=", "a directory this user can write", "locked is not"],
        setup=_read_only_dir,
        needs_non_root=True,
    ),
    Case(
        "multirun-log-dir-under-a-file",
        "train",
        ["-m", "paths.log_dir={tmp}/a_file/logs", "seed=1,2"],
        ["paths.log_dir=", "a directory that can be created", "a_file is a file"],
        setup=_file_as_data_dir,
    ),
    Case(
        "eval-log-dir-under-a-file",
        "eval",
        ["paths.log_dir={tmp}/a_file/logs", "ckpt_path={tmp}/real.ckpt"],
        ["paths.log_dir=", "a directory that can be created", "a_file is a file"],
        setup=_real_and_a_file,
    ),
    Case("eval-seed", "eval", ["+seed=1", "ckpt_path={tmp}/real.ckpt"], ["seed='1' ", EVAL_TAKES]),
    Case(
        "eval-data",
        "eval",
        ["ckpt_path={tmp}/real.ckpt", "+data=moons"],
        ["data='moons' ", EVAL_TAKES, "data, model and seed come from the checkpoint"],
        setup=_real,
    ),
    Case(
        "eval-model-setting",
        "eval",
        ["ckpt_path={tmp}/real.ckpt", "+model.hidden_sizes=[3]"],
        ["model.hidden_sizes='[3]' ", EVAL_TAKES],
        setup=_real,
    ),
    Case(
        "eval-trainer-gpu-without-gpu",
        "eval",
        ["ckpt_path={tmp}/real.ckpt", "trainer=gpu"],
        ["trainer.accelerator='gpu' ", "(no gpu here)"],
        setup=_real,
        only_if=NO_GPU,
    ),
    Case(
        "eval-empty-ckpt",
        "eval",
        ["ckpt_path={tmp}/empty.ckpt"],
        ["ckpt_path=", "empty.ckpt", "this file is empty"],
        setup=_empty_file,
    ),
    Case(
        "eval-foreign-zip",
        "eval",
        ["ckpt_path={tmp}/archive.ckpt"],
        ["ckpt_path=", "archive.ckpt", "a zip archive of something else"],
        setup=_foreign_zip,
    ),
    Case(
        "eval-foreign-pickle",
        "eval",
        ["ckpt_path={tmp}/objects.ckpt"],
        ["ckpt_path=", "objects.ckpt", "objects other than tensors and plain values"],
        setup=_foreign_pickle,
    ),
    Case(
        "train-foreign-pickle",
        "train",
        ["ckpt_path={tmp}/objects.ckpt"],
        ["ckpt_path=", "objects.ckpt", "objects other than tensors and plain values"],
        setup=_foreign_pickle,
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
def test_bad_input_is_refused_before_training(
    case: Case, run_cli, tmp_path, request, monkeypatch, capsys
):
    if not case.only_if:
        pytest.skip("does not apply on this machine")
    if case.needs_non_root and os.geteuid() == 0:
        # Root reads a chmod 000 dir (and writes a chmod 555 one) anyway, so the OS cannot
        # refuse it here: have the permission query answer as it would for a user.
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda path, mode: False if Path(path).name == "locked" else real_access(path, mode),
        )
    if case.setup is not None:
        data = request.getfixturevalue("checkpoint") if case.setup in NEEDS_CHECKPOINT else b""
        case.setup(tmp_path, data)
        if case.needs_non_root:
            request.addfinalizer(lambda: (tmp_path / "locked").chmod(0o755))
    before = _snapshot(tmp_path)
    capsys.readouterr()  # the checkpoint fixture's training run, if it ran just now

    overrides = [o.format(tmp=tmp_path) for o in case.overrides]
    run = run_cli(case.task, *overrides)

    assert run.code != 0, run.out
    for text in case.expect:
        assert text in run.out, f"{text!r} not in:\n{run.out}"
    assert "Traceback" not in run.out, run.out
    if not case.hydra:
        # neuralab's own check: exit 2 and one line on stderr naming setting, value and
        # allowed values, printed once, and no config tree before it
        assert run.code == 2, run.out
        lines = run.err.strip().splitlines()
        assert len(lines) == 1, run.out
        assert run.out.count(lines[0].removeprefix("neuralab: error: ")) == 1, run.out
        assert "├──" not in run.out, run.out
        assert lines[0].startswith("neuralab: error: ")
        assert " is not allowed; expected " in lines[0]
        assert all(text in lines[0] for text in case.expect), lines[0]

    # Nothing written: no run dir, no sweep dir, no file (an old run dir keeps its files).
    new = _snapshot(tmp_path) - before
    assert not new, sorted(new)
    if case.setup is _empty_data_dir:
        assert not any((tmp_path / "no_data").iterdir())  # no download was attempted


def test_multirun_with_an_unknown_option_leaves_no_sweep_dir(run_cli, tmp_path):
    """Hydra refuses `optimizer=nope` after it made the sweep dir (multirun.yaml): the dir goes."""
    run = run_cli("train", "-m", "optimizer=sgd,nope")
    assert run.code != 0, run.out
    assert "Could not find 'optimizer/nope'" in run.out, run.out
    assert not list(tmp_path.iterdir()), sorted(tmp_path.rglob("*"))


@pytest.mark.parametrize("override", ["optimizer.lr=-1", "seed=abc", "trainer.max_epochs=0"])
def test_a_config_refusal_imports_neither_torch_nor_lightning(tmp_path, override):
    """Refused from the config alone, before the heavy imports (seconds of them): a typo
    answers at once. Checked by what the process imported, not by a clock."""
    probe = (
        "import sys\n"
        "from neuralab.runtime.entry import train_main\n"
        f"sys.argv = ['neuralab-train', {override!r}]\n"
        "try:\n    train_main()\n"
        "except SystemExit as exc:\n"
        "    heavy = sorted(m for m in ('torch', 'lightning') if m in sys.modules)\n"
        "    print('exit', exc.code, 'heavy', heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip().splitlines()[-1] == "exit 2 heavy []", proc.stdout + proc.stderr
    assert not (tmp_path / "logs").exists()
