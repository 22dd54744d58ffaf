"""`Diagnostics.step_due`: a packed fit calls a member's step hook only when this says
it has work (pack/module.py), so a step it calls idle must leave the callback as it was."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from neuralab.diagnostics import Diagnostics


class Recorder:
    """A logger that keeps what it is given (no TensorBoard: no histograms written)."""

    def __init__(self):
        self.logged: list = []

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.logged.append((step, dict(metrics)))


def state(callback: Diagnostics) -> tuple:
    norms = callback._norms
    return (len(callback._buffer), callback._hist_epoch, callback._norm_step, norms.pending)


@pytest.mark.parametrize(("every", "every_n_epochs"), [(3, 2), (1, 1), (10, 5)])
def test_a_step_that_is_not_due_changes_nothing(every, every_n_epochs):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    module = SimpleNamespace(net=net)
    callback = Diagnostics(every_n_steps=every, every_n_epochs=every_n_epochs, images=False)
    logger = Recorder()
    trainer = SimpleNamespace(is_global_zero=True, loggers=[logger], max_epochs=4)
    callback.on_fit_start(trainer, module)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    due_steps, steps_per_epoch = [], 7
    for step in range(4 * steps_per_epoch):
        trainer.global_step, trainer.current_epoch = step, step // steps_per_epoch
        net(torch.randn(5, 4)).square().mean().backward()
        due = callback.step_due(step, trainer.current_epoch, trainer.max_epochs)
        before = (state(callback), copy.deepcopy(logger.logged))
        callback.on_before_optimizer_step(trainer, module, optimizer)
        if not due:
            assert (state(callback), logger.logged) == before, f"step {step} was not idle"
        due_steps.append(due)
        optimizer.step()
        optimizer.zero_grad()
        if step % steps_per_epoch == steps_per_epoch - 1:
            callback.on_train_epoch_end(trainer, module)
    # Every measured step is due, and the step after it (which completes it).
    for step in range(0, len(due_steps), every):
        assert due_steps[step], step
        if step + 1 < len(due_steps):
            assert due_steps[step + 1], step + 1
    if every > 1:  # some steps are idle, so the check can skip something
        assert not all(due_steps)
    assert logger.logged, "the measured steps reached the logger"
