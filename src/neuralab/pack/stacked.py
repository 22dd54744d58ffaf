"""Many nets of one structure as one vectorized call (torch.func).

The members' parameters live side by side in stacked tensors (M, ...), one per
parameter name; each member's own nn.Parameters become views of its row (same
storage), so its optimizer, its state_dict and load_state_dict work on its own
weights as before, and what they change is what the stacked call uses. A forward
runs one copy of the net under `vmap(functional_call)` over the stacked tensors: every
layer is a batched operation over the members. After backward each member's
parameters get their rows of the stacked gradients (views, no copies). Buffers
(BatchNorm's running statistics) are stacked the same way, so a member's statistics
are those of its own batches only. vmap works for any plain nn.Module (a forker's conv
net included), with no change to the net; nets made of Linear, norm, activation and
dropout layers run faster through batched twins of those layers (pack/batched.py),
checked against vmap on the first call.

Dropout draws per member (`randomness="different"`): masks differ from a lone run's.
The members' dropout rates may differ (nn.Identity is nn.Dropout(p=0)): vmap runs one
copy of the net, so only a batched twin gives each member its own rate, and nets
without one (or whose twin differs from vmap) do not stack then.
"""

from __future__ import annotations

import copy
import operator

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from neuralab.pack.batched import loss_twin, twin

# nn.Identity is nn.Dropout(p=0) in train and eval mode alike, so at one name members
# may have either, at any rate: a dropout slot. Other dropout layers (Dropout1d/2d,
# AlphaDropout) have no batched twin of their own rate: their p must be equal.
DROPOUT_SLOT = (nn.Dropout, nn.Identity)
NO_TWIN = "the members' dropout rates differ and the net has no batched twin"
TWIN_DIFFERS = (
    "the members' dropout rates differ and the net's batched twin does not compute "
    "what vmap does (its forward code may assume the batch comes first)"
)


def structure(net: nn.Module) -> tuple:
    """What must be equal for nets to stack: module types and tensor shapes."""
    modules = tuple((name, *_kind(m)) for name, m in net.named_modules())
    tensors = tuple(
        (name, tuple(t.shape), t.dtype)
        for name, t in [*net.named_parameters(), *net.named_buffers()]
    )
    return modules, tensors


def _kind(module: nn.Module) -> tuple:
    if type(module) in DROPOUT_SLOT:
        return ("dropout slot",)  # the rate may differ: StackedNets gives each its own
    return type(module).__name__, _settings(module)


def _settings(module: nn.Module) -> tuple:
    """A module's plain settings (dropout p, eps, momentum, ...): one copy runs all."""
    return tuple(
        sorted((k, v) for k, v in vars(module).items() if isinstance(v, int | float | str | bool))
    )


def dropout_rates(
    nets: list[nn.Module], device: torch.device | None = None, dtype: torch.dtype | None = None
) -> dict[str, Tensor]:
    """The members' rates (M,) at each dropout slot where they differ (Identity: 0)."""
    by_net = [dict(net.named_modules()) for net in nets]
    rates = {}
    for name, module in nets[0].named_modules():
        if type(module) in DROPOUT_SLOT:
            values = [getattr(modules[name], "p", 0.0) for modules in by_net]
            if len(set(values)) > 1:
                rates[name] = torch.tensor(values, device=device, dtype=dtype)
    return rates


def unstackable(nets: list[nn.Module], example: Tensor | None = None) -> str | None:
    """Why these nets cannot run as one (None: they can). `example`: one input batch
    (B, ...) of a member, to check a twin against vmap before the fit when it must be
    used (the members' dropout rates differ)."""
    first = structure(nets[0])
    for index, net in enumerate(nets[1:], 1):
        if structure(net) != first:
            return f"member {index}'s net differs from member 0's in structure or settings"
    if any(p.is_meta or not p.is_leaf for p in nets[0].parameters()):
        return "the net has lazy or non-leaf parameters"
    rates = dropout_rates(nets)
    if not rates:
        return None
    if twin(nets[0], dict, dict) is None:
        return NO_TWIN
    if not isinstance(example, Tensor) or not example.is_floating_point():
        return None  # checked on the first call instead (StackedNets._check raises)
    # Member 0 and one of another rate: a net whose forward mixes members shows it.
    other = next(m for m in range(len(nets)) if any(r[m] != r[0] for r in rates.values()))
    stacked = StackedNets(copy.deepcopy([nets[0], nets[other]]))
    generator = torch.Generator().manual_seed(0)  # the global stream stays untouched
    inputs = torch.randn(2, *example.shape, generator=generator, dtype=example.dtype)
    device = next(nets[0].parameters(), example).device
    return None if stacked.twin_agrees(inputs.to(device)) else TWIN_DIFFERS


class StackedNets:
    """`forward(*inputs, active=...)`: members `active` on inputs (A, B, ...) each."""

    def __init__(self, nets: list[nn.Module]):
        # A private copy runs the calls: hooks on the members' own nets (diagnostics)
        # see only their own forwards, never the pack's.
        self.template = copy.deepcopy(nets[0])
        self.params = _stacked(nets, "named_parameters", leaf=True)
        self.buffers = _stacked(nets, "named_buffers", leaf=False)
        self.members: list[dict[str, nn.Parameter]] = []
        for row, net in enumerate(nets):
            for name, stacked in self.buffers.items():
                _put(net, name, stacked[row])
            views = {n: nn.Parameter(p.detach()[row]) for n, p in self.params.items()}
            for name, view in views.items():
                _put(net, name, view)
            self.members.append(views)
        self._vmapped = vmap(self._call, randomness="different")
        self.last_params: dict[str, Tensor] = {}  # the stacked parameters of the last call
        self._buffers: dict[str, Tensor] = {}  # those of the current call
        self.rates = _rates(nets, self.params)  # the slots where the members' rates differ
        self._rates = self.rates  # those of the current call's members
        rates = (lambda: self._rates) if self.rates else None
        self.twin = twin(self.template, lambda: self.last_params, lambda: self._buffers, rates)
        if self.rates and self.twin is None:
            raise ValueError(NO_TWIN)  # unstackable() says so before a pack is built
        self.checked = self.twin is None
        # The stacked gradients the members view, and (member parameter, its view).
        self._sources: list[Tensor | None] = []
        self._shared: list[tuple[nn.Parameter, Tensor | None]] = []

    def _call(self, params: dict, buffers: dict, *inputs: Tensor) -> Tensor:
        return functional_call(self.template, (params, buffers), inputs)

    def _run(self, params: dict, buffers: dict, inputs: tuple, train: bool) -> Tensor:
        self.last_params, self._buffers = params, buffers
        if self.twin is not None and not self.checked:
            self._check(inputs)
        if self.twin is None:
            self.template.train(train)
            return self._vmapped(params, buffers, *inputs)
        self.twin.train(train)
        return self.twin(*inputs)

    def _check(self, inputs: tuple) -> None:
        """Keep the twin only if it computes what vmap does; with the members' dropout
        rates differing there is nothing to fall back to (vmap runs one rate)."""
        self.checked = True
        if not self._agrees(inputs):
            if self.rates:
                raise RuntimeError(TWIN_DIFFERS)
            self.twin = None

    def _agrees(self, inputs: tuple) -> bool:
        """Eval mode (no dropout, no statistics updated), on the current call's tensors:
        the net's forward code may assume the batch comes first."""
        self.template.eval()
        self.twin.eval()
        with torch.no_grad():
            expected = self._vmapped(self.last_params, self._buffers, *inputs)
            try:
                return torch.allclose(self.twin(*inputs), expected, 1e-4, 1e-5, equal_nan=True)
            except RuntimeError:  # shapes that only the batch-first code accepts
                return False

    def twin_agrees(self, *inputs: Tensor) -> bool:
        """Whether the twin computes what vmap does on inputs (M, B, ...) of all members."""
        self.last_params, self._buffers, self._rates = self.params, self.buffers, self.rates
        return self.twin is not None and self._agrees(inputs)

    def forward(self, *inputs: Tensor, active: list[int], train: bool) -> Tensor:
        self._rates = self.rates
        if len(active) == len(self.members):
            return self._run(self.params, self.buffers, inputs, train)
        # Some members stopped: the rows of those still training.
        rows = torch.tensor(active, device=inputs[0].device)
        params = {n: p[rows] for n, p in self.params.items()}
        buffers = {n: b[rows] for n, b in self.buffers.items()}
        self._rates = {n: r[rows] for n, r in self.rates.items()}
        out = self._run(params, buffers, inputs, train)
        if train:  # BatchNorm updated the copies: back to the members' rows
            with torch.no_grad():
                for name, stacked in buffers.items():
                    self.buffers[name].index_copy_(0, rows, stacked)
        return out

    def share_grads(self) -> None:
        """Each member's parameters get their rows of the stacked gradients, as views.
        `zero_grad` zeroes the stacked gradients in place, so the views stay valid and
        are made again only when one was dropped (Lightning's zero_grad before
        validation sets every parameter's .grad to None)."""
        sources = [p.grad for p in self.params.values()]
        if (
            self._shared
            and all(map(operator.is_, sources, self._sources))
            and all(view.grad is grad for view, grad in self._shared)
        ):
            return
        self._sources, self._shared = sources, []
        for row, views in enumerate(self.members):
            for name, stacked in zip(self.params, sources, strict=True):
                grad = None if stacked is None else stacked[row]
                views[name].grad = grad
                self._shared.append((views[name], grad))

    def zero_grad(self) -> None:
        """Zeroed in place, not dropped: the members' gradient views stay valid (a
        stopped member's rows stay zero; it is not stepped)."""
        for stacked in self.params.values():
            if stacked.grad is not None:
                stacked.grad.zero_()


class StackedCall:
    """Modules without parameters (the members' losses: their class weights are
    buffers) as one vectorized call; their buffers are read, never written. Losses
    with a batched twin (pack/batched.py) run as one plain call, once checked."""

    def __init__(self, modules: list[nn.Module]):
        self.template = copy.deepcopy(modules[0])
        self.buffers = _stacked(modules, "named_buffers", leaf=False)
        self._vmapped = vmap(self._call)
        self.twin = loss_twin(self.template)
        self.checked = self.twin is None

    def _call(self, buffers: dict, *inputs: Tensor) -> Tensor:
        return functional_call(self.template, buffers, inputs)

    def forward(self, *inputs: Tensor, active: list[int]) -> Tensor:
        buffers = self.buffers
        if buffers and len(active) < len(next(iter(buffers.values()))):
            rows = torch.tensor(active, device=inputs[0].device)
            buffers = {n: b[rows] for n, b in buffers.items()}
        if not self.checked:
            self.checked = True
            with torch.no_grad():
                expected = self._vmapped(buffers, *inputs)
                same = torch.allclose(self.twin(*inputs), expected, equal_nan=True)
            self.twin = self.twin if same else None
        if self.twin is not None:
            return self.twin(*inputs)
        return self._vmapped(buffers, *inputs)


def _stacked(nets: list[nn.Module], tensors: str, leaf: bool) -> dict[str, Tensor]:
    names = [name for name, _ in getattr(nets[0], tensors)()]
    by_net = [dict(getattr(net, tensors)()) for net in nets]
    stacked = {n: torch.stack([t[n].detach() for t in by_net]) for n in names}
    if leaf:
        for name, tensor in stacked.items():
            tensor.requires_grad_(by_net[0][name].requires_grad)
    return stacked


def _rates(nets: list[nn.Module], params: dict[str, Tensor]) -> dict[str, Tensor]:
    """dropout_rates on the parameters' device, in their dtype (64-bit packs too)."""
    first = next(iter(params.values()), None)
    if first is None:
        return dropout_rates(nets)
    return dropout_rates(nets, first.device, first.dtype)


def _put(net: nn.Module, name: str, tensor: Tensor) -> None:
    """Replace the parameter or buffer `name` (dotted) of `net` by `tensor`."""
    owner_name, _, attr = name.rpartition(".")
    setattr(net.get_submodule(owner_name), attr, tensor)
