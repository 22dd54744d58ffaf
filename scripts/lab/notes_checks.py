"""Settle wrong or imprecise statements of the teaching notes by measurement.

    python scripts/lab/notes_checks.py [--out logs/experiments/notes_checks.json]

Runs every measurement in scripts/lab/notes_measure.py (the same functions that
tests/test_notes_claims.py asserts on), writes a JSON list with one entry per
statement: {statement, source, verdict, measured, test}, and prints a summary.
The "measured" text is filled with this run's numbers. scripts/lab/experiments.py
renders the JSON into docs/EXPERIMENTS.md ("Where the notes are wrong").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import notes_measure as m

from neuralab.errors import ConfigError

TEST_FILE = "tests/test_notes_claims.py"
DEFAULT_OUT = Path("logs/experiments/notes_checks.json")


@dataclass(frozen=True)
class Claim:
    test: str  # test function in TEST_FILE that asserts on the same measurement
    statement: str  # what the notes say, and what is right instead
    source: str  # notes file:line — "short quote"
    verdict: str  # "wrong" or "imprecise"
    measure: Callable[[], dict]
    describe: Callable[[dict], str]  # the measured numbers as one sentence


def _dropout(r: dict) -> str:
    return (
        f"nn.Dropout(p={r['p']}) from neuralab's MLP, 200k inputs: in train mode "
        f"{r['kept_fraction']:.4f} of units kept, each multiplied by "
        f"{r['kept_scale_min']:.6f}..{r['kept_scale_max']:.6f} (1/(1-p) = "
        f"{r['expected_scale']:.6f}), mean output / mean input = {r['train_mean_ratio']:.4f}; "
        f"in eval mode max |output - input| = {r['eval_max_abs_diff']:g} (identity). "
        f"Scaling by 1-p at test time as well would give {r['notes_eval_mean_ratio']:.4f}x "
        "the training mean."
    )


def _keep_prob(r: dict) -> str:
    return (
        f"The notes' code run with keep_prob={r['keep_prob']}: it keeps "
        f"{r['kept_fraction']:.4f} of the units (not {r['keep_prob']}); training mean ratio "
        f"{r['train_mean_ratio']:.4f}; with their inference rule the inference mean is "
        f"{r['infer_over_train_mean']:.4f}x the training mean (should be 1)."
    )


def _leaky(r: dict) -> str:
    return (
        f"neuralab's leaky_relu on x in [{r['x_min']:g}, {r['x_max']:g}] gives outputs from "
        f"{r['y_min']:g} to {r['y_max']:g} (not constant): a line with fitted slope "
        f"{r['fitted_slope']:.6f}, max residual {r['max_residual']:g}, gradient "
        f"{r['grad_min']:g}..{r['grad_max']:g}; nn.LeakyReLU(negative_slope="
        f"{r['other_slope']}) fits slope {r['other_fitted_slope']:.6f}."
    )


def _xavier_normal(r: dict) -> str:
    return (
        f"neuralab's xavier_normal on Linear({r['fan_in']}, {r['fan_out']}) (gain 1): std "
        f"{r['xavier_normal_std']:.5f} vs sqrt(2/(n_in+n_out)) = {r['glorot_var'] ** 0.5:.5f}; "
        f"the notes' sqrt(1/n_in) = {r['lecun_var'] ** 0.5:.5f} is LeCun init. he_normal "
        f"(relu): std {r['he_normal_std']:.5f} vs sqrt(2/n_in) = {r['he_var'] ** 0.5:.5f}."
    )


def _xavier_var(r: dict) -> str:
    return (
        f"neuralab's xavier_uniform on Linear({r['fan_in']}, {r['fan_out']}) (gain 1): max |w| "
        f"{r['xavier_uniform_max_abs']:.5f} (bound sqrt(6)/t = {r['glorot_bound']:.5f}, right), "
        f"variance {r['xavier_uniform_var']:.6f} = 2/t^2 = {r['glorot_var']:.6f}, "
        f"not 2/t = {r['notes_004_var']:.6f}."
    )


def _jacobian(r: dict) -> str:
    return (
        f"torch.autograd Jacobian of softmax over {r['k']} random logits: max |J - (diag(s) - "
        f"s s^T)| = {r['max_diff_full_formula']:.1e}; max |J - diag(s(1-s))| = "
        f"{r['max_diff_diagonal_only']:.4f}; largest off-diagonal |J_ij| (= s_i s_j) "
        f"{r['max_abs_off_diagonal']:.4f}; rows sum to {r['max_abs_row_sum']:.1e}."
    )


def _softmax_bound(r: dict) -> str:
    pairs = zip(r["scales"], r["max_jacobian_norm"], r["max_ce_grad_norm"], strict=True)
    cells = "; ".join(f"x{s:g}: {j:.3f}, {c:.3f}" for s, j, c in pairs)
    return (
        "Largest softmax-Jacobian spectral norm and cross-entropy gradient norm "
        "(neuralab's cross_entropy, per sample) over 200 random 10-class logit vectors "
        f"per logit scale: {cells}. Bounds 0.5 and sqrt(2) = 1.414 at every scale; "
        "at large scale softmax saturates and its Jacobian shrinks."
    )


def _batch_norm(r: dict) -> str:
    return (
        f"neuralab's batch norm, 200 training batches of N(5, 3^2): per-batch output mean "
        f"{r['train_batch_mean']:.1e}, std {r['train_batch_std']:.4f} in train mode; running "
        f"mean {r['running_mean']:.3f}, var {r['running_var']:.3f}. A batch of N(8, 3^2): "
        f"output mean {r['shifted_train_mode_mean']:.1e} in train mode but "
        f"{r['shifted_eval_mode_mean']:.3f} in eval mode (running statistics). One sample in "
        f'train mode fails: "{r["one_sample_train_error"]}".'
    )


def _layer_norm(r: dict) -> str:
    return (
        f"neuralab's layer norm on 64 examples x 8 features: per-example mean max "
        f"{r['row_mean_max_abs']:.1e}, std {r['row_std_mean']:.4f}; per-feature mean over the "
        f"batch up to {r['column_mean_max_abs']:.3f} (not normalized across examples); one "
        f"example alone vs in the batch: max diff {r['alone_vs_in_batch']:g} (batch norm: "
        f"{r['batch_norm_alone_vs_in_batch']:.3f})."
    )


def _weight_decay(r: dict) -> str:
    return (
        "50 steps on 0.5*||w - t||^2 (100 weights, lr 0.01, lambda 0.1), max |w| difference: "
        f"SGD weight_decay vs explicit L2 term {r['sgd_decay_vs_l2']:.1e}; Adam weight_decay vs "
        f"L2 {r['adam_decay_vs_l2']:.1e}; AdamW (decoupled decay) vs Adam+L2 "
        f"{r['adamw_vs_adam_l2']:.4f} ({100 * r['adamw_vs_adam_l2_rel']:.1f}% of ||w||)."
    )


N0, N1, N2, N3, N4 = (
    "notes/000_aa1a733be1ad7655.txt",
    "notes/001_39a2409ee650082f.txt",
    "notes/002_42788359cd18f081.txt",
    "notes/003_c3bf948d7a3f46bf.txt",
    "notes/004_c6922fb2a1cea782.txt",
)

CLAIMS = [
    Claim(
        "test_dropout_is_inverted_at_train_time_and_identity_at_test_time",
        "Dropout outputs must be scaled by 1-p at test time. PyTorch (and Keras) use "
        "inverted dropout: kept units are scaled by 1/(1-p) during training and the layer "
        "is the identity at test time; scaling again at test time shrinks every output.",
        f'{N3}:351 — "At test time, all neurons are active but their outputs are scaled by 1 - p"',
        "wrong",
        m.dropout_scaling,
        _dropout,
    ),
    Claim(
        "test_notes_dropout_recipe_keeps_the_wrong_fraction_and_double_scales",
        "The notes' dropout code draws the mask with probability 1 - keep_prob (so it keeps "
        "the drop fraction, not keep_prob) and, after already dividing at train time, also "
        "scales outputs by keep_prob at inference.",
        f'{N2}:710,733 — "np.random.binomial(1, 1 - keep_prob, ...)" and "the output is '
        'scaled by the keep_prob"',
        "wrong",
        m.dropout_keep_prob_recipe,
        _keep_prob,
    ),
    Claim(
        "test_leaky_relu_is_a_line_with_a_slope_parameter",
        "Leaky ReLU is not a constant 0.01 for negative inputs: it is slope*x, a line whose "
        "slope is a parameter (0.01 is only PyTorch's default).",
        f'{N4}:33 — "Leaky ReLU f(z)=0.01 if z<0"',
        "wrong",
        m.leaky_relu_negative_side,
        _leaky,
    ),
    Claim(
        "test_xavier_normal_std_is_glorot_not_one_over_fan_in",
        "Xavier/Glorot init is not N(0, 1/n_in) (that is LeCun init): its variance is "
        "2/(n_in + n_out). He init is 2/n_in.",
        f'{N3}:469 — "Xavier (Glorot) Initialization ... W ~ N(0, 1/n_in)"',
        "wrong",
        m.init_scales,
        _xavier_normal,
    ),
    Claim(
        "test_xavier_uniform_variance_is_two_over_fan_sum",
        "With t = sqrt(n_in + n_out), Xavier-uniform draws from U(-sqrt(6)/t, sqrt(6)/t), whose "
        "variance is 2/t^2 = 2/(n_in + n_out), not 2/t.",
        f'{N4}:180-182 — "t=sqrt(input neurons + output neurons) ... Var(W)=2/t"',
        "wrong",
        m.init_scales,
        _xavier_var,
    ),
    Claim(
        "test_softmax_jacobian_has_off_diagonal_terms",
        "The softmax derivative is not only s_i(1 - s_i): the Jacobian is diag(s) - s s^T, "
        "with off-diagonal entries -s_i s_j that are not zero.",
        f'{N3}:147 — "Softmax ... Gradient: df/dz_i = f(z_i)(1 - f(z_i))"',
        "imprecise",
        m.softmax_jacobian,
        _jacobian,
    ),
    Claim(
        "test_softmax_cannot_explode_gradients",
        "Softmax cannot make gradients explode: its Jacobian has spectral norm at most 1/2 "
        "for any logits, and the cross-entropy gradient wrt the logits has norm at most "
        "sqrt(2). Large logits saturate softmax, which makes its gradients vanish instead.",
        f'{N1}:1259 — "Softmax can cause exploding gradients if logits (inputs to the softmax) '
        'are too large"',
        "wrong",
        m.softmax_gradient_bound,
        _softmax_bound,
    ),
    Claim(
        "test_batch_norm_uses_running_statistics_at_eval",
        "Batch norm standardizes with the mini-batch statistics only in training mode; in "
        "eval mode it uses running averages, so its outputs are not zero-mean/unit-variance "
        "for a batch whose statistics differ (and learned gamma/beta rescale them anyway).",
        f'{N0}:1003 — "BatchNorm normalizes activations to zero mean and unit variance per '
        'mini-batch"',
        "imprecise",
        m.batch_norm_train_vs_eval,
        _batch_norm,
    ),
    Claim(
        "test_layer_norm_uses_each_example_alone",
        "Layer norm normalizes each example over its own features; it uses no other example "
        "of the batch, and the features are not normalized across examples.",
        f'{N2}:444 — "It normalizes the outputs of each layer to have zero mean and unit '
        'variance, considering all examples in the layer"',
        "imprecise",
        m.layer_norm_per_example,
        _layer_norm,
    ),
    Claim(
        "test_weight_decay_equals_l2_for_sgd_not_for_adam",
        "Weight decay equals an L2 penalty only for plain SGD. With Adam the L2 gradient is "
        "rescaled by the adaptive step; decoupled weight decay (AdamW) gives different weights.",
        f'{N2}:411 — "L2 regularization is also known as weight decay"',
        "imprecise",
        m.weight_decay_vs_l2,
        _weight_decay,
    ),
]


def run_checks() -> list[dict]:
    """Measure every claim now; the entries of the JSON list, in CLAIMS order."""
    return [
        {
            "statement": c.statement,
            "source": c.source,
            "verdict": c.verdict,
            "measured": c.describe(c.measure()),
            "test": f"{TEST_FILE}::{c.test}",
        }
        for c in CLAIMS
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write")
    args = parser.parse_args(argv)
    try:
        if args.out.is_dir():
            raise ConfigError("--out", str(args.out), "a file path, not a directory")
        checks = run_checks()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(checks, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for i, check in enumerate(checks, 1):
        print(f"{i}. [{check['verdict']}] {check['source']}\n   {check['measured']}\n")
    print(f"{len(checks)} statements checked; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
