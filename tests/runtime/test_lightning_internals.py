"""Every private Lightning attribute neuralab uses exists in the installed Lightning, and
each shim function does what its caller relies on. A release that moves one fails here,
with the attribute and the Lightning version in the message."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from types import ModuleType

import lightning as L
import pytest
import torch
from lightning.fabric.utilities import registry
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuralab.runtime import lightning_internals as shim
from neuralab.runtime.checkpointing import ModelCheckpoint
from neuralab.runtime.loggers import TensorBoardLogger

pytestmark = pytest.mark.fast  # the core contract: pytest -m fast


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(3, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("val/loss", loss)  # something to monitor
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("shim")
    data = TensorDataset(
        torch.randn(8, 3, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 2
    )
    checkpoint = ModelCheckpoint(dirpath=root / "checkpoints", monitor="val/loss", save_last=True)
    trainer = L.Trainer(
        max_epochs=1,
        logger=TensorBoardLogger(root, name="", version=""),
        callbacks=[checkpoint],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Tiny(), DataLoader(data, batch_size=4))
    return trainer, checkpoint


def _owners(trainer: L.Trainer, checkpoint: ModelCheckpoint) -> dict[str, object]:
    return {
        "registry": registry,
        "Trainer": trainer,
        "_CheckpointConnector": trainer._checkpoint_connector,
        "_TrainingEpochLoop": trainer.fit_loop.epoch_loop,
        "TensorBoardLogger": trainer.logger,
        "ModelCheckpoint": checkpoint,
        "LightningModule": trainer.lightning_module,
    }


@pytest.mark.parametrize("owner, name", sorted(shim.PRIVATE), ids=lambda v: str(v))
def test_every_private_attribute_exists_in_this_lightning(fitted, owner, name):
    obj = _owners(*fitted)[owner]
    names = {obj.__name__.rpartition(".")[2]} if isinstance(obj, ModuleType) else set()
    names |= {c.__name__ for c in type(obj).__mro__}
    assert owner in names
    shim.private(obj, name)  # raises LightningMoved, naming it and the version, if moved


def test_a_moved_attribute_names_itself_and_the_version():
    with pytest.raises(shim.LightningMoved) as info:
        shim.private(object(), "_logger_connector")
    message = str(info.value)
    assert f"lightning {L.__version__} has no object._logger_connector" in message
    assert "lightning_internals.py" in message


def test_counting_a_step_moves_global_step_and_the_logging_step(fitted):
    trainer, _ = fitted
    step, logged = trainer.global_step, shim.batches_that_stepped(trainer)
    shim.count_optimizer_step(trainer)
    assert (trainer.global_step, shim.batches_that_stepped(trainer)) == (step + 1, logged + 1)


def test_dump_checkpoint_is_the_dict_lightning_writes(fitted):
    trainer, _ = fitted
    checkpoint = shim.dump_checkpoint(trainer, weights_only=False)
    assert set(checkpoint["state_dict"]) == {"net.weight", "net.bias"}
    assert "optimizer_states" in checkpoint and "loops" in checkpoint


def test_a_pinned_loop_state_is_what_checkpoints_take(fitted):
    trainer, _ = fitted
    connector = trainer._checkpoint_connector
    walk = shim.pin_loops_state(trainer, lambda: {"fit_loop": {"pinned": True}})
    try:
        assert set(walk()) >= {"fit_loop", "validate_loop", "test_loop"}  # Lightning's own
        assert shim.dump_checkpoint(trainer, weights_only=True)["loops"] == {
            "fit_loop": {"pinned": True}
        }
    finally:
        del connector._get_loops_state_dict  # the class's walk again
    assert shim.dump_checkpoint(trainer, weights_only=True)["loops"] == walk()


def test_graph_drawing_switches_off_and_the_prefix_reads(fitted):
    trainer, _ = fitted
    shim.draw_graph_once(trainer)
    assert trainer.logger._log_graph is False
    assert shim.tag_prefix(trainer.logger) == ""


def test_the_checkpoint_hooks_read_and_write_lightnings_state(fitted):
    trainer, checkpoint = fitted
    path, step = checkpoint.last_saved
    assert path.endswith(".ckpt") and step == trainer.global_step - 1  # before the count above
    checkpoint.last_saved = (path, step)
    assert checkpoint.may_save_now(trainer) in (True, False)
    assert isinstance(checkpoint.saves_on_train_epoch_end(trainer), bool)


def test_logged_hparams_follow_save_hyperparameters_logger_flag(fitted):
    trainer, _ = fitted
    module = trainer.lightning_module
    module._log_hyperparams = False
    assert shim.logged_hparams(module) is None
    module._log_hyperparams = True
    assert shim.logged_hparams(module) == module.hparams_initial


class FromEntryPoint(Callback):
    pass


def factory() -> list[Callback]:
    return [FromEntryPoint()]


def test_entry_points_are_scanned_once_and_each_trainer_gets_its_own_callbacks(monkeypatch):
    scans = []

    def scan(group):
        scans.append(group)
        value = f"{__name__}:factory"
        return [EntryPoint(name="test", value=value, group=group)] if "callbacks" in group else []

    monkeypatch.setattr(registry, "entry_points", scan)
    shim.scan_entry_points_once()
    shim.scan_entry_points_once()  # once is enough: not wrapped twice
    assert isinstance(registry.entry_points, shim.ScannedOnce)
    assert registry.entry_points.scan is scan
    found = [
        [
            c
            for c in L.Trainer(logger=False, enable_progress_bar=False).callbacks
            if isinstance(c, FromEntryPoint)
        ]
        for _ in range(2)
    ]
    assert scans == ["lightning.pytorch.callbacks_factory"]
    assert [len(f) for f in found] == [1, 1] and found[0][0] is not found[1][0]
