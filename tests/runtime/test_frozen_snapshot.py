"""`frozen`: the copy a checkpoint kept in memory is made of (runtime/checkpointing.py):
nothing training changes afterwards reaches it, and a view gets storage of its own."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import pytest
import torch

from neuralab.runtime.checkpointing import frozen

pytestmark = pytest.mark.fast

Pair = namedtuple("Pair", "a b")


class Box:
    def __init__(self):
        self.items = [1]


def test_a_frozen_copy_does_not_change_with_the_original():
    stacked = torch.zeros(4, 3)
    state = OrderedDict(weight=stacked[1])  # a member's row: a view of the pack's tensor
    state._metadata = {"": {"version": 1}}
    checkpoint = {
        "state_dict": state,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0)}}, "betas": (0.9, 0.99)}],
        "loops": {"epoch": 2, "pair": Pair(torch.ones(1), "x"), "name": None},
        "callbacks": {"Box": Box()},
    }
    copy = frozen(checkpoint)
    stacked.add_(1)
    checkpoint["optimizer_states"][0]["state"][0]["step"].add_(1)
    checkpoint["loops"]["pair"].a.add_(1)
    checkpoint["loops"]["epoch"] = 3
    checkpoint["callbacks"]["Box"].items.append(2)

    assert type(copy["state_dict"]) is OrderedDict
    assert copy["state_dict"]._metadata == {"": {"version": 1}}
    weight = copy["state_dict"]["weight"]
    assert torch.equal(weight, torch.zeros(3))
    assert weight.untyped_storage().nbytes() == 3 * 4  # its own row, not the pack's 4 rows
    assert copy["optimizer_states"][0]["state"][0]["step"].item() == 3.0
    assert copy["optimizer_states"][0]["betas"] == (0.9, 0.99)
    assert type(copy["loops"]["pair"]) is Pair and copy["loops"]["pair"].a.item() == 1.0
    assert copy["loops"]["epoch"] == 2 and copy["loops"]["name"] is None
    assert copy["callbacks"]["Box"].items == [1]
