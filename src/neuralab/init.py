"""Weight-init schemes chosen by name, applied once to every Linear layer.

Biases start at zero in every scheme except "default" (torch's own Kaiming-uniform
weights with fan-in-scaled uniform biases). Xavier/Glorot draws with variance
2 / (fan_in + fan_out) (times gain^2), not 1 / fan_in; He/Kaiming with
2 / fan_in for ReLU (gain sqrt(2)).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from neuralab.errors import ConfigError, lookup

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
    """Re-initialise every nn.Linear in `net` with `scheme` (in place)."""
    if scheme == "default":
        return  # keep torch's per-layer reset_parameters()
    init_fn = lookup(SCHEMES, "init.scheme", scheme)
    if params.get("std", 1.0) <= 0:
        raise ConfigError("init.std", params["std"], "a positive number")
    for module in net.modules():
        if isinstance(module, nn.Linear):
            init_fn(module.weight, activation, **params)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
