"""pack/modes.py sets eval mode as `eval()` does and restores every module's mode as
Lightning's validation loop does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuralab.pack.modes import EvalModes

pytestmark = pytest.mark.fast


class KeepsDropoutOn(nn.Module):
    """Its own train(): the dropout child stays in training mode (MC dropout)."""

    def __init__(self):
        super().__init__()
        self.linear, self.dropout = nn.Linear(2, 2), nn.Dropout(0.5)

    def train(self, mode: bool = True):
        super().train(mode)
        self.dropout.train(True)
        return self


class Noted(nn.Module):
    """Its own __setattr__, which sees every assignment."""

    def __init__(self):
        super().__init__()
        object.__setattr__(self, "seen", [])
        self.norm = nn.BatchNorm1d(2)

    def __setattr__(self, name, value):
        if name == "training":
            self.seen.append(value)
        super().__setattr__(name, value)


def tree() -> nn.Module:
    root = nn.ModuleList([nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), KeepsDropoutOn()])
    root.append(Noted())
    root[0][1].eval()  # a module already in eval mode before validation
    return root


def modes(root: nn.Module) -> list[bool]:
    return [m.training for m in root.modules()]


def test_enter_is_eval_and_leave_restores_every_mode():
    expected_eval, ours = tree(), tree()
    before = modes(ours)
    expected_eval.eval()
    switch = EvalModes()
    switch.enter(ours)
    assert modes(ours) == modes(expected_eval)
    assert ours[1].dropout.training and not ours[1].linear.training  # its own train()
    assert ours[2].seen[-1] is False  # its own __setattr__ was called
    switch.leave()
    assert modes(ours) == before and before.count(False) == 1
    assert ours[2].seen[-1] is True


def test_a_pack_validates_in_eval_mode(monkeypatch):
    """The hooks Lightning calls around validation go through it."""
    from neuralab.pack.module import PackedModule

    calls = []
    monkeypatch.setattr(EvalModes, "enter", lambda self, root: calls.append(("enter", root)))
    monkeypatch.setattr(EvalModes, "leave", lambda self: calls.append(("leave",)))
    pack = PackedModule.__new__(PackedModule)
    torch.nn.Module.__init__(pack)
    pack.modes = EvalModes()
    pack.on_validation_model_eval()
    pack.on_validation_model_train()
    assert calls == [("enter", pack), ("leave",)]
