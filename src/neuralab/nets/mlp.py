"""The multilayer perceptron and its dropout / norm / residual variants.

One class: every variant is the same stack of blocks
    Linear(d_in, d) -> norm(d) -> activation -> dropout(p)
with `norm` and `p` chosen by config, plus an optional identity skip around each
block whose input and output widths agree. A final Linear maps to the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from neuralab.errors import ConfigError
from neuralab.layers import activation_class, make_norm, norm_class


class Block(nn.Module):
    def __init__(
        self,
        d_in: int,
        d_out: int,
        act: type[nn.Module],
        norm: str | None,
        dropout: float,
        residual: bool,
    ):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm = make_norm(norm, d_out)
        self.act = act()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.residual = residual and d_in == d_out

    def forward(self, x: Tensor) -> Tensor:  # (B, d_in) -> (B, d_out)
        y = self.drop(self.act(self.norm(self.linear(x))))
        return x + y if self.residual else y


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (128, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
        residual: bool = False,
    ):
        super().__init__()
        hidden = _check_hidden(hidden_sizes)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError("model.dropout", dropout, "a number in [0, 1)")
        act, _ = activation_class(activation), norm_class(norm)  # fail before building
        widths = [in_features, *hidden]
        self.blocks = nn.Sequential(
            *(
                Block(a, b, act, norm, dropout, residual)
                for a, b in zip(widths, widths[1:], strict=False)
            )
        )
        self.head = nn.Linear(widths[-1], out_features)

    def forward(self, x: Tensor) -> Tensor:  # (B, in_features) -> (B, out_features)
        return self.head(self.blocks(x))


def _check_hidden(hidden_sizes: Sequence[int]) -> list[int]:
    sizes = list(hidden_sizes) if isinstance(hidden_sizes, Sequence) else None
    if not sizes or not all(type(h) is int and h > 0 for h in sizes):
        raise ConfigError(
            "model.hidden_sizes", hidden_sizes, "a non-empty list of positive integers"
        )
    return sizes
