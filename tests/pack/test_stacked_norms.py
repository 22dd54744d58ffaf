"""pack/stacked_norms.py: every member's layer norms measured at once equal what each
member's own NormProbe measures, in the order a pack's hooks ask for them (member 0
completes step s and measures step s + 1 before member 1 completes step s)."""

from __future__ import annotations

import torch
from torch import nn

from neuralab.diagnostics.norms import NormProbe, named_weighted
from neuralab.pack.stacked import StackedNets
from neuralab.pack.stacked_norms import StackedNorms


def test_stacked_norms_are_each_members_own():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)) for _ in range(3)]
    stacked = StackedNets(nets)
    step = [0]
    shared = StackedNorms(stacked, lambda: step[0])
    layers = [named_weighted(net) for net in nets]
    probes = [shared.probe(i)(layers[i]) for i in range(3)]
    own = [NormProbe(layers[i]) for i in range(3)]  # the lone run's, on the same views
    params = list(stacked.params.values())
    optimizer = torch.optim.SGD(params, lr=0.5)
    compared = 0
    for step[0] in range(4):  # every step measured: the tightest interleaving
        x = torch.randn(3, 8, 5)
        stacked.forward(x, active=[0, 1, 2], train=True).square().sum().backward()
        stacked.share_grads()
        for probe, reference in zip(probes, own, strict=True):
            if probe.pending:  # completes the previous step, then measures this one
                got, expected = probe.after_step(), reference.after_step()
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
                compared += 1
            probe.before_step()
            reference.before_step()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
    for probe, reference in zip(probes, own, strict=True):
        torch.testing.assert_close(probe.after_step(), reference.after_step())
        assert not probe.pending
    assert compared == 3 * 3
    assert sorted(shared._after) == [2, 3]  # measured once a step for all; older dropped
