"""Weight-init schemes chosen by name, applied once to every Linear and conv layer.

Biases start at zero in every scheme except "default" (torch's own Kaiming-uniform
weights with fan-in-scaled uniform biases). Xavier/Glorot draws with variance
2 / (fan_in + fan_out) (times gain^2), not 1 / fan_in; He/Kaiming with
2 / fan_in for ReLU (gain sqrt(2)). Fans are torch.nn.init's: for a conv weight
(out, in / groups, *kernel), fan_in = in / groups * prod(kernel) and
fan_out = out * prod(kernel); a ConvTranspose weight is stored (in, out / groups,
*kernel) and torch reads it the same way, as its own reset_parameters() does.

Any other layer with parameters (norm layers, Embedding, a forker's own layer) keeps
the init its class gives it; the run's log names those layers once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from torch import nn
from torch.nn.parameter import is_lazy

from neuralab.errors import ConfigError, lookup

log = logging.getLogger("neuralab")

# The layers a scheme re-initialises: a weight (out, in, *kernel) whose fans
# torch.nn.init knows how to compute. Lazy variants subclass these.
TARGETS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

# torch.nn.init.calculate_gain only knows these; other activations use gain 1.
_GAIN_NAMES = {"relu", "leaky_relu", "tanh", "sigmoid", "selu", "linear"}


def _gain(activation: str) -> float:
    return nn.init.calculate_gain(activation if activation in _GAIN_NAMES else "linear")


def _kaiming_nonlinearity(activation: str) -> str:
    # kaiming_* derive the gain from this name; leaky_relu uses a=0 -> same as relu.
    return activation if activation in {"relu", "leaky_relu"} else "relu"


SCHEMES: dict[str, Callable[..., None]] = {
    "xavier_uniform": lambda w, act, **_: nn.init.xavier_uniform_(w, gain=_gain(act)),
    "xavier_normal": lambda w, act, **_: nn.init.xavier_normal_(w, gain=_gain(act)),
    "he_uniform": lambda w, act, **_: nn.init.kaiming_uniform_(
        w, nonlinearity=_kaiming_nonlinearity(act)
    ),
    "he_normal": lambda w, act, **_: nn.init.kaiming_normal_(
        w, nonlinearity=_kaiming_nonlinearity(act)
    ),
    "orthogonal": lambda w, act, **_: nn.init.orthogonal_(w, gain=_gain(act)),
    "normal": lambda w, act, std=0.01, **_: nn.init.normal_(w, 0.0, std),
    "zeros": lambda w, act, **_: nn.init.zeros_(w),
}


def apply_init(net: nn.Module, scheme: str, activation: str = "relu", **params: float) -> None:
    """Re-initialise every Linear and conv layer of `net` with `scheme` (in place)."""
    if scheme == "default":
        return  # keep torch's per-layer reset_parameters()
    init_fn = lookup(SCHEMES, "init.scheme", scheme)
    if params.get("std", 1.0) <= 0:
        raise ConfigError("init.std", params["std"], "a positive number")
    skipped = []
    for name, module in net.named_modules():
        if isinstance(module, TARGETS) and not is_lazy(module.weight):
            init_fn(module.weight, activation, **params)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif any(True for _ in module.parameters(recurse=False)):
            skipped.append((name, module))
    if skipped:
        log.info("%s", skipped_message(scheme, skipped))


def skipped_message(scheme: str, skipped: list[tuple[str, nn.Module]]) -> str:
    """One line naming the layers `scheme` left alone, and why that is (usually) fine."""
    names = ", ".join(f"{name or '<net>'} ({_kind(m)})" for name, m in skipped)
    # By class name, so a forker's own RMSNorm counts too: norm layers start at
    # scale 1, shift 0 whatever the scheme, which is what they are meant to do.
    if all("Norm" in type(m).__name__ for _, m in skipped):
        why = "left at their own default, as usual for norm layers (scale 1, shift 0)"
    else:
        why = "left at their own default (schemes cover Linear and Conv weights only)"
    return f"init={scheme}: {why}: {names}"


def _kind(module: nn.Module) -> str:
    lazy = any(is_lazy(p) for p in module.parameters(recurse=False))
    return type(module).__name__ + (", not built before the first forward" if lazy else "")
