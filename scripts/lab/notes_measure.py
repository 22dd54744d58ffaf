"""Measurements that settle statements in the teaching notes.

Each function measures one point with neuralab's own parts where they exist
(activations and norms by name, init schemes by name, the MLP's dropout layer,
the cross-entropy loss) or plain torch otherwise, and returns the numbers as a
dict. scripts/lab/notes_checks.py reports them, tests/test_notes_claims.py asserts on
them: both read the same measurement. Every function is seeded and runs in well
under a second on one CPU core.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.functional import jacobian

from neuralab.init import apply_init
from neuralab.layers import activation_class, make_norm
from neuralab.losses import CrossEntropy
from neuralab.nets.mlp import MLP


def dropout_scaling(p: float = 0.3, n: int = 200_000, seed: int = 0) -> dict[str, float]:
    """Train vs eval behaviour of the nn.Dropout that neuralab's MLP builds."""
    drop = MLP(4, 2, hidden_sizes=[8], dropout=p).blocks[0].drop
    x = 0.5 + torch.rand(n, generator=torch.Generator().manual_seed(seed))  # all > 0
    with torch.random.fork_rng():  # dropout draws from the global generator
        torch.manual_seed(seed)
        y_train = drop.train()(x)
    kept = y_train != 0
    scale = y_train[kept] / x[kept]  # the factor applied to every kept unit
    y_eval = drop.eval()(x)
    return {
        "p": p,
        "kept_fraction": kept.float().mean().item(),
        "kept_scale_min": scale.min().item(),
        "kept_scale_max": scale.max().item(),
        "expected_scale": 1 / (1 - p),
        "train_mean_ratio": (y_train.mean() / x.mean()).item(),
        "eval_max_abs_diff": (y_eval - x).abs().max().item(),
        # What the notes' recipe would add on top: scale by (1 - p) at test time.
        "notes_eval_mean_ratio": ((1 - p) * y_eval.mean() / y_train.mean()).item(),
    }


def dropout_keep_prob_recipe(
    keep_prob: float = 0.8, n: int = 200_000, seed: int = 0
) -> dict[str, float]:
    """The notes' own dropout code, transcribed from numpy to torch and run as written."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.5 + torch.rand(n, generator=gen)
    # dropout_mask = np.random.binomial(1, 1 - keep_prob, size=...)
    mask = torch.bernoulli(torch.full((n,), 1 - keep_prob), generator=gen)
    y_train = x * mask / (1 - keep_prob)
    y_infer = keep_prob * x  # "the output is scaled by the keep_prob" at inference
    return {
        "keep_prob": keep_prob,
        "kept_fraction": mask.mean().item(),
        "train_mean_ratio": (y_train.mean() / x.mean()).item(),
        "infer_over_train_mean": (y_infer.mean() / y_train.mean()).item(),
    }


def leaky_relu_negative_side(slope: float = 0.2) -> dict[str, float]:
    """neuralab's leaky_relu on negative inputs: a line through 0, not a constant."""
    x = torch.linspace(-10.0, -0.1, 100, dtype=torch.float64, requires_grad=True)
    y = activation_class("leaky_relu")()(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    fit = (x * y).sum() / (x * x).sum()  # least-squares slope of a line through 0
    other = nn.LeakyReLU(negative_slope=slope)(x)
    return {
        "x_min": x.min().item(),
        "x_max": x.max().item(),
        "y_min": y.min().item(),
        "y_max": y.max().item(),
        "fitted_slope": fit.item(),
        "max_residual": (y - fit * x).abs().max().item(),
        "grad_min": grad.min().item(),
        "grad_max": grad.max().item(),
        "other_slope": slope,
        "other_fitted_slope": ((x * other).sum() / (x * x).sum()).item(),
    }


def init_weights(scheme: str, fan_in: int, fan_out: int, activation: str, seed: int) -> Tensor:
    """The weight matrix of one Linear(fan_in, fan_out) after neuralab's `scheme`."""
    layer = nn.Linear(fan_in, fan_out)
    with torch.random.fork_rng():  # torch.nn.init draws from the global generator
        torch.manual_seed(seed)
        apply_init(layer, scheme, activation=activation)
    return layer.weight.detach().double()


def init_scales(fan_in: int = 1000, fan_out: int = 250, seed: int = 0) -> dict[str, float]:
    """Measured std/var/bound of Xavier and He weights on one large layer (250k weights).

    activation="identity" gives Xavier gain 1, the textbook scheme (neuralab
    multiplies by torch's gain for tanh/relu/... otherwise).
    """
    xn = init_weights("xavier_normal", fan_in, fan_out, "identity", seed)
    xu = init_weights("xavier_uniform", fan_in, fan_out, "identity", seed)
    he = init_weights("he_normal", fan_in, fan_out, "relu", seed)
    return {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "xavier_normal_std": xn.std().item(),
        "xavier_uniform_var": xu.var().item(),
        "xavier_uniform_max_abs": xu.abs().max().item(),
        "he_normal_std": he.std().item(),
        "glorot_var": 2 / (fan_in + fan_out),
        "glorot_bound": (6 / (fan_in + fan_out)) ** 0.5,
        "he_var": 2 / fan_in,
        "lecun_var": 1 / fan_in,  # what N(0, 1/n_in) is: LeCun init, not Xavier
        "notes_004_var": 2 / (fan_in + fan_out) ** 0.5,  # "Var(W)=2/t", t=sqrt(in+out)
    }


def softmax_jacobian(seed: int = 0, k: int = 5) -> dict[str, float]:
    """Autograd's Jacobian of softmax vs diag(s) - s s^T and vs the diagonal-only formula."""
    z = torch.randn(k, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    jac = jacobian(lambda v: torch.softmax(v, dim=0), z)  # (k, k): d s_i / d z_j
    s = torch.softmax(z, dim=0)
    full = torch.diag(s) - torch.outer(s, s)
    diagonal_only = torch.diag(s * (1 - s))
    off = ~torch.eye(k, dtype=torch.bool)
    return {
        "k": k,
        "max_diff_full_formula": (jac - full).abs().max().item(),
        "max_diff_diagonal_only": (jac - diagonal_only).abs().max().item(),
        "max_abs_off_diagonal": jac[off].abs().max().item(),
        "max_abs_row_sum": jac.sum(dim=1).abs().max().item(),
    }


def softmax_gradient_bound(
    scales: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0), draws: int = 200, k: int = 10
) -> dict[str, list[float]]:
    """Largest softmax-Jacobian spectral norm and cross-entropy gradient norm per logit scale.

    J = diag(s) - s s^T has spectral norm <= 1/2 whatever the logits, and the
    cross-entropy gradient wrt the logits, s - onehot(y), has norm <= sqrt(2).
    """
    gen = torch.Generator().manual_seed(0)
    loss = CrossEntropy()
    jac_norms, ce_norms = [], []
    for scale in scales:
        z = scale * torch.randn(draws, k, dtype=torch.float64, generator=gen)
        y = torch.randint(0, k, (draws,), generator=gen)
        s = torch.softmax(z, dim=1)
        jac = torch.diag_embed(s) - s.unsqueeze(2) * s.unsqueeze(1)  # (draws, k, k)
        jac_norms.append(torch.linalg.matrix_norm(jac, ord=2).max().item())
        z.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(z, y) * draws, z)  # per-sample: undo the mean
        ce_norms.append(grad.norm(dim=1).max().item())
    return {"scales": list(scales), "max_jacobian_norm": jac_norms, "max_ce_grad_norm": ce_norms}


def batch_norm_train_vs_eval(width: int = 8, steps: int = 200, seed: int = 0) -> dict[str, float]:
    """neuralab's batch norm after `steps` training batches of N(5, 3^2), then in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    bn = make_norm("batch", width)
    with torch.no_grad():
        for _ in range(steps):
            y_train = bn.train()(5 + 3 * torch.randn(256, width, generator=gen))
        running_mean, running_var = bn.running_mean.mean().item(), bn.running_var.mean().item()
        shifted = 8 + 3 * torch.randn(256, width, generator=gen)  # a later batch, mean 8
        y_shift_eval = bn.eval()(shifted)
        y_shift_train = bn.train()(shifted)
    one_sample_error = ""
    try:
        bn.train()(shifted[:1])
    except ValueError as err:  # training mode needs batch statistics
        one_sample_error = str(err)
    return {
        "train_batch_mean": y_train.mean(dim=0).abs().max().item(),
        "train_batch_std": y_train.std(dim=0, unbiased=False).mean().item(),
        "running_mean": running_mean,
        "running_var": running_var,
        "shifted_train_mode_mean": y_shift_train.mean().item(),
        "shifted_eval_mode_mean": y_shift_eval.mean().item(),
        "one_sample_train_error": one_sample_error,
    }


def layer_norm_per_example(width: int = 8, batch: int = 64, seed: int = 0) -> dict[str, float]:
    """neuralab's layer norm: each example normalized over its own features only."""
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(width, dtype=torch.float32)  # features with different means
    x = offsets + torch.randn(batch, width, generator=gen)
    ln, bn = make_norm("layer", width), make_norm("batch", width)
    with torch.no_grad():
        y = ln(x)
        return {
            "row_mean_max_abs": y.mean(dim=1).abs().max().item(),
            "row_std_mean": y.std(dim=1, unbiased=False).mean().item(),
            "column_mean_max_abs": y.mean(dim=0).abs().max().item(),
            "alone_vs_in_batch": (ln(x[:1]) - y[:1]).abs().max().item(),
            "batch_norm_alone_vs_in_batch": (bn(x[:2])[:1] - bn(x)[:1]).abs().max().item(),
        }


def weight_decay_vs_l2(lam: float = 0.1, lr: float = 0.01, steps: int = 50) -> dict[str, float]:
    """Final weights: optimizer weight_decay vs an explicit L2 term lam/2 * ||w||^2 in the loss."""
    w0 = torch.randn(100, generator=torch.Generator().manual_seed(0))
    target = torch.randn(100, generator=torch.Generator().manual_seed(1))

    def run(opt_cls: type, decay: float, l2: float) -> Tensor:
        w = w0.clone().requires_grad_(True)
        opt = opt_cls([w], lr=lr, weight_decay=decay)
        for _ in range(steps):
            opt.zero_grad()
            (F.mse_loss(w, target, reduction="sum") / 2 + l2 / 2 * w.pow(2).sum()).backward()
            opt.step()
        return w.detach()

    sgd_decay, sgd_l2 = run(torch.optim.SGD, lam, 0.0), run(torch.optim.SGD, 0.0, lam)
    adam_decay, adam_l2 = run(torch.optim.Adam, lam, 0.0), run(torch.optim.Adam, 0.0, lam)
    adamw = run(torch.optim.AdamW, lam, 0.0)
    return {
        "sgd_decay_vs_l2": (sgd_decay - sgd_l2).abs().max().item(),
        "adam_decay_vs_l2": (adam_decay - adam_l2).abs().max().item(),
        "adamw_vs_adam_l2": (adamw - adam_l2).abs().max().item(),
        "adamw_vs_adam_l2_rel": ((adamw - adam_l2).norm() / adam_l2.norm()).item(),
    }
