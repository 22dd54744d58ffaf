"""TensorBoard diagnostics: why a net trains or fails, seen without writing code.

Tags, all under `diagnostics/` (one TensorBoard group, after the learning curves:
runtime/tags.py), with layers in input -> output order (`layerNN_<module name>`):
  grad_norm/, weight_norm/, update_ratio/   each layer with a >= 2-D weight (Linear, ConvNd, ...),
                                            every `every_n_steps` optimizer steps
                                            (auto: ~20 times an epoch, >= 10 steps apart)
  act_mean/, act_std/, act_saturated/, act_dead/
                                            each activation, one validation batch per epoch
  weights/, grads/ (histograms)             each such layer, first step of a picture epoch;
                                            weights again at the end of fit
  val/confusion_matrix, val/pred_vs_target (regression)
                                            each picture epoch, and at the end of fit
  train/decision_boundary (2-D data)        the same epochs: the net's classes over the
                                            plane, with the training points on top
  test/confusion_matrix, test/pred_vs_target
                                            at test
A picture epoch is every `every_n_epochs`-th epoch from the first, and the last one
(max_epochs). Scalars go to every logger; histograms and images to TensorBoard only.

Cost on the training hot path: nothing on most steps; on a measured step a few
norms and a copy of the weights, all left on the device. The values reach the
host once per epoch (one sync). Activations hook one validation batch; images run
the net on the split tensors of the datamodule (`splits`) outside any loop.
Only rank 0 measures and writes; nothing here is a collective, so DDP ranks
never wait for each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn

from neuralab.diagnostics.activations import ActivationProbe
from neuralab.diagnostics.images import (
    confusion_matrix_image,
    decision_boundary_image,
    pred_vs_target_image,
    predict,
)
from neuralab.diagnostics.norms import NORM_KINDS, NormProbe, named_weighted
from neuralab.errors import ConfigError
from neuralab.losses import CLASSIFICATION
from neuralab.runtime.chunks import steps_per_epoch
from neuralab.runtime.loggers import histogram, write_histogram_proto, write_png
from neuralab.runtime.tags import diagnostics_tag

# every_n_steps=auto: norms about this many times an epoch, at least this many steps
# apart (each measurement costs a few passes over the weights: ~1/3 of an MNIST step).
AUTO, POINTS_PER_EPOCH, MIN_STEPS_APART = "auto", 20, 10
# Histogram buckets. TensorBoard's default ("tensorflow": ~1500 exponential edges) costs
# ~2.5 ms a histogram against ~0.6 ms for 64 even bins, which show the same shape.
HIST_BINS = 64


class Diagnostics(Callback):
    def __init__(
        self,
        every_n_steps: int | str = AUTO,
        every_n_epochs: int = 5,
        norms: bool = True,
        activations: bool = True,
        histograms: bool = True,
        images: bool = True,
    ):
        for name, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if name == "every_n_steps" and value == AUTO:
                continue
            if type(value) is not int or value < 1:
                allowed = "an integer >= 1" + (f" or {AUTO}" if name == "every_n_steps" else "")
                raise ConfigError(f"callbacks.diagnostics.{name}", value, allowed)
        self.every_n_steps, self.every_n_epochs = every_n_steps, every_n_epochs
        self._every = every_n_steps if every_n_steps != AUTO else MIN_STEPS_APART
        self.norms, self.activations = norms, activations
        self.histograms, self.images = histograms, images
        self._norms: NormProbe | None = None
        self._acts: ActivationProbe | None = None
        self._norm_step = 0
        self._buffer: list[tuple[int, Tensor]] = []  # (step, (3, L) norms) until epoch end
        self._hist_epoch = self._image_step = self._hist_step = -1
        # net(x) for the pictures: (net, x (N, F), device) -> (N, K) on the CPU. A packed
        # fit gives each member's from one forward of all members (pack/watch.py).
        self.predict = predict
        # A net's norm probe, from its layers: a packed fit measures all members at once.
        self.norm_probe: Callable[[list], NormProbe] = NormProbe
        # A tensor's histogram (runtime/loggers.py): a packed fit makes all members' at once.
        self.histogram: Callable[[Tensor, int], Any] = histogram

    # ------------------------------------------------------------ lifecycle
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Here, not in setup(): the net is on its device and in its final process by now.
        net = _net(pl_module)
        self._norms = self.norm_probe(named_weighted(net)) if self.norms else None
        self._acts = ActivationProbe(net) if self.activations else None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_n_steps == AUTO:
            steps = steps_per_epoch(trainer)
            per_epoch = steps if math.isfinite(steps) else 0
            self._every = max(MIN_STEPS_APART, round(per_epoch / POINTS_PER_EPOCH))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _active(trainer):
            return
        self._flush_norms(trainer)
        # Early stopping may end fit before a picture epoch: the final state is always shown.
        if self.images and self._image_step != _epoch_step(trainer):
            self._write_images(trainer, pl_module, "val")
        if self.histograms and self._hist_step != trainer.global_step:
            self._write_histograms(trainer, pl_module, grads=False)

    # ------------------------------------------------------------- training
    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Gradients are complete here (after backward / accumulation, before clipping).
        if not _active(trainer):
            return
        self._finish_norms()  # a chunk's previous step: its weights are the updated ones
        if self._norms is not None and trainer.global_step % self._every == 0:
            self._norm_step = trainer.global_step
            self._norms.before_step()
        epoch = trainer.current_epoch
        if self.histograms and self._hist_epoch != epoch and self._picture_epoch(trainer):
            self._hist_epoch = epoch
            self._write_histograms(trainer, pl_module, grads=True)

    def step_due(self, step: int, epoch: int, max_epochs: int | None) -> bool:
        """Whether `on_before_optimizer_step` at this step and epoch has work to do. A
        packed fit asks before calling it for each member: most steps have none, and a
        call through a member's trainer costs ~0.1 ms (64 members x 400 steps: 2.6 s)."""
        if self._norms is not None and (self._norms.pending or step % self._every == 0):
            return True
        return (
            self.histograms and self._hist_epoch != epoch and self.picture_epoch(epoch, max_epochs)
        )

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._finish_norms()

    def _finish_norms(self) -> None:
        """Complete a measured step once it has been taken (the update ratio needs it)."""
        if self._norms is not None and self._norms.pending:
            self._buffer.append((self._norm_step, self._norms.after_step()))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _active(trainer):
            self._flush_norms(trainer)

    def _flush_norms(self, trainer: L.Trainer) -> None:
        if not self._buffer or self._norms is None:
            return
        steps = [step for step, _ in self._buffer]
        table = torch.stack([values for _, values in self._buffer]).tolist()  # (S, 3, L): one sync
        self._buffer = []
        for step, rows in zip(steps, table, strict=True):
            metrics = {
                f"{kind}/{tag}": value
                for kind, row in zip(NORM_KINDS, rows, strict=True)
                for tag, value in zip(self._norms.tags, row, strict=True)
            }
            _log_scalars(trainer, metrics, step)

    # ----------------------------------------------------------- validation
    def on_validation_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._acts is not None and batch_idx == 0 and _watching(trainer):
            self._acts.attach()  # hooks for this one forward pass only

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._acts is not None:
            self._acts.detach()

    def record_activations(self, trainer: L.Trainer, stats: dict[str, Tensor]) -> None:
        """The first validation batch's activation statistics, measured for this net
        elsewhere (a packed fit measures all members in one forward): as if this
        callback's own hooks had measured them."""
        if self._acts is not None and _watching(trainer):
            self._acts.stats = dict(stats)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _watching(trainer):
            return
        if self._acts is not None and self._acts.stats:
            stats, self._acts.stats = self._acts.stats, {}
            values = torch.stack(list(stats.values())).tolist()  # one sync per epoch
            _log_scalars(trainer, dict(zip(stats, values, strict=True)), _epoch_step(trainer))
        if self.images and self._picture_epoch(trainer):
            self._write_images(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.images and _active(trainer):
            self._write_images(trainer, pl_module, "test")

    # -------------------------------------------------------------- writing
    def _picture_epoch(self, trainer: L.Trainer) -> bool:
        return self.picture_epoch(trainer.current_epoch, trainer.max_epochs)

    def picture_epoch(self, epoch: int, max_epochs: int | None) -> bool:
        return epoch % self.every_n_epochs == 0 or epoch == (max_epochs or 0) - 1

    def _write_histograms(
        self, trainer: L.Trainer, pl_module: L.LightningModule, grads: bool
    ) -> None:
        step = self._hist_step = trainer.global_step
        writers = _tensorboards(trainer)
        if not writers:
            return
        for tag, layer in named_weighted(_net(pl_module)):
            weights, grad = layer.weight, layer.weight.grad
            found = [(f"weights/{tag}", weights)]
            if grads and grad is not None:
                found.append((f"grads/{tag}", grad))
            for name, values in found:
                proto = self.histogram(values, HIST_BINS)
                for writer in writers:
                    write_histogram_proto(writer, diagnostics_tag(name), proto, step)

    def _write_images(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Predictions on the whole `stage` split, drawn; skipped without TensorBoard or splits."""
        writers, datamodule = _tensorboards(trainer), trainer.datamodule
        splits = getattr(datamodule, "splits", None) or {}
        if not writers or stage not in splits:
            return
        net, device = _net(pl_module), pl_module.device
        step = _epoch_step(trainer) if stage == "val" else trainer.global_step
        x, y = splits[stage]  # x (N, F); y (N,) classes or (N, T) targets
        outputs = self.predict(net, x, device)
        if getattr(datamodule, "task", CLASSIFICATION) == CLASSIFICATION:
            images = {
                f"{stage}/confusion_matrix": confusion_matrix_image(
                    y, outputs, _classes(datamodule, y)
                )
            }
            if stage == "val" and x.shape[1] == 2:  # 2-D data: the plane is the input space
                x_train, y_train = splits["train"]  # tagged train/: it shows training points
                images["train/decision_boundary"] = decision_boundary_image(
                    net, x_train, y_train, _classes(datamodule, y_train), device
                )
        else:
            images = {f"{stage}/pred_vs_target": pred_vs_target_image(y, outputs)}
        for writer in writers:
            for tag, image in images.items():
                write_png(writer, diagnostics_tag(tag), image, step)
        if stage == "val":
            self._image_step = step


def _net(pl_module: L.LightningModule) -> nn.Module:
    return getattr(pl_module, "net", pl_module)  # neuralab modules keep the plain net in .net


def _classes(datamodule: L.LightningDataModule | None, y: Tensor) -> int:
    return getattr(datamodule, "num_classes", None) or int(y.max()) + 1


def _epoch_step(trainer: L.Trainer) -> int:
    """The step Lightning logs val/* at: the last training step of the epoch (from 0)."""
    return max(trainer.global_step - 1, 0)


def _active(trainer: L.Trainer) -> bool:
    """Only rank 0 measures and writes, and only when something can receive it."""
    return trainer.is_global_zero and bool(trainer.loggers)


def _watching(trainer: L.Trainer) -> bool:
    """A real validation epoch of fit (not the sanity check, not trainer.validate)."""
    return _active(trainer) and not trainer.sanity_checking and trainer.state.fn == "fit"


def _tensorboards(trainer: L.Trainer) -> list:
    return [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]


def _log_scalars(trainer: L.Trainer, metrics: dict[str, float], step: int) -> None:
    tagged = {diagnostics_tag(name): value for name, value in metrics.items()}
    for logger in trainer.loggers:
        logger.log_metrics(tagged, step=step)
