"""Statements in the teaching notes that are wrong or imprecise, settled by measurement.

One test per statement (scripts/lab/notes_checks.py lists them with their quotes);
each asserts on the same measurement function the script reports from
(scripts/lab/notes_measure.py), with neuralab's own layers, init schemes and losses.
Tolerances are several standard errors of the estimate, stated at each assert.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "lab"
sys.path.insert(0, str(SCRIPTS))  # the scripts are plain files, not a package
import notes_checks  # noqa: E402
import notes_measure as m  # noqa: E402


def test_dropout_is_inverted_at_train_time_and_identity_at_test_time():
    r = m.dropout_scaling(p=0.3)
    # 200k Bernoulli(0.7) draws: std of the kept fraction is 0.001; 0.005 is 5 sigma.
    assert r["kept_fraction"] == pytest.approx(0.7, abs=0.005)
    # Every kept unit is multiplied by exactly 1/(1-p) (float32 rounding only).
    assert r["kept_scale_min"] == pytest.approx(1 / 0.7, rel=1e-6)
    assert r["kept_scale_max"] == pytest.approx(1 / 0.7, rel=1e-6)
    # So the expectation is kept at train time (std error of the ratio ~0.002).
    assert r["train_mean_ratio"] == pytest.approx(1.0, abs=0.01)
    assert r["eval_max_abs_diff"] == 0.0  # eval mode: exactly the identity
    # The notes' extra 1-p at test time would break the train/test match by 30%.
    assert r["notes_eval_mean_ratio"] == pytest.approx(0.7, abs=0.01)


def test_notes_dropout_recipe_keeps_the_wrong_fraction_and_double_scales():
    r = m.dropout_keep_prob_recipe(keep_prob=0.8)
    # binomial(1, 1 - keep_prob) keeps 20%, not the 80% keep_prob promises (std 0.001).
    assert r["kept_fraction"] == pytest.approx(0.2, abs=0.005)
    assert r["train_mean_ratio"] == pytest.approx(1.0, abs=0.02)  # already compensated
    # ... so scaling by keep_prob at inference leaves outputs 20% too small.
    assert r["infer_over_train_mean"] == pytest.approx(0.8, abs=0.02)


def test_leaky_relu_is_a_line_with_a_slope_parameter():
    r = m.leaky_relu_negative_side(slope=0.2)
    assert r["y_max"] - r["y_min"] > 0.09  # not a constant: -0.1 .. -0.001
    # float64 on exact inputs: the fit is exact up to rounding.
    assert r["fitted_slope"] == pytest.approx(0.01, abs=1e-12)
    assert r["max_residual"] < 1e-12
    assert r["grad_min"] == r["grad_max"] == pytest.approx(0.01, abs=1e-15)
    assert r["other_fitted_slope"] == pytest.approx(0.2, abs=1e-12)  # slope is a parameter


def test_xavier_normal_std_is_glorot_not_one_over_fan_in():
    r = m.init_scales(fan_in=1000, fan_out=250)
    # 250k draws: std error of a std estimate is 1/sqrt(2N) = 0.14%; 1% is 7 sigma.
    glorot, lecun = math.sqrt(r["glorot_var"]), math.sqrt(r["lecun_var"])
    assert r["xavier_normal_std"] == pytest.approx(glorot, rel=0.01)
    assert abs(r["xavier_normal_std"] - lecun) / lecun > 0.2  # the notes' N(0, 1/n_in): 26% off
    assert r["he_normal_std"] == pytest.approx(math.sqrt(r["he_var"]), rel=0.01)


def test_xavier_uniform_variance_is_two_over_fan_sum():
    r = m.init_scales(fan_in=1000, fan_out=250)
    # Variance of 250k uniform draws: relative std error sqrt(0.8 / N) = 0.18%.
    assert r["xavier_uniform_var"] == pytest.approx(r["glorot_var"], rel=0.01)
    assert r["notes_004_var"] / r["xavier_uniform_var"] > 30  # "2/t" is 35x too large
    # The bound sqrt(6)/t in the same note is right: samples come within 0.1% of it.
    assert r["glorot_bound"] * 0.999 < r["xavier_uniform_max_abs"] <= r["glorot_bound"]


def test_softmax_jacobian_has_off_diagonal_terms():
    r = m.softmax_jacobian()
    assert r["max_diff_full_formula"] < 1e-12  # autograd == diag(s) - s s^T (float64)
    assert r["max_abs_off_diagonal"] > 0.01  # -s_i s_j is not zero ...
    assert r["max_diff_diagonal_only"] == pytest.approx(r["max_abs_off_diagonal"])  # ... and
    # is exactly what the diagonal-only formula misses.
    assert r["max_abs_row_sum"] < 1e-12  # rows sum to 0 because sum(s) = 1


def test_softmax_cannot_explode_gradients():
    r = m.softmax_gradient_bound(scales=(1.0, 10.0, 100.0, 1000.0))
    # Logits up to ~3000 in size: the Jacobian never exceeds 1/2, the loss gradient sqrt(2).
    assert max(r["max_jacobian_norm"]) <= 0.5 + 1e-12
    assert max(r["max_ce_grad_norm"]) <= math.sqrt(2) + 1e-12


def test_batch_norm_uses_running_statistics_at_eval():
    r = m.batch_norm_train_vs_eval()
    # Train mode: each batch standardized with its own statistics (eps=1e-5 costs ~1e-6).
    assert r["train_batch_mean"] < 1e-5
    assert r["train_batch_std"] == pytest.approx(1.0, abs=1e-3)
    assert r["shifted_train_mode_mean"] == pytest.approx(0.0, abs=1e-5)
    # Eval mode: running estimates (~5, ~9) are used, so a batch of mean 8 comes out
    # near (8 - 5) / 3 = 1, not 0 (running-mean noise is ~0.05 here).
    assert r["running_mean"] == pytest.approx(5.0, abs=0.2)
    assert r["running_var"] == pytest.approx(9.0, abs=0.5)
    assert r["shifted_eval_mode_mean"] == pytest.approx(1.0, abs=0.15)
    assert "Expected more than 1 value per channel" in r["one_sample_train_error"]


def test_layer_norm_uses_each_example_alone():
    r = m.layer_norm_per_example()
    assert r["row_mean_max_abs"] < 1e-5  # each example: mean 0 ...
    assert r["row_std_mean"] == pytest.approx(1.0, abs=1e-3)  # ... std 1 over its features
    assert r["column_mean_max_abs"] > 0.5  # features across the batch are not normalized
    assert r["alone_vs_in_batch"] < 1e-6  # the rest of the batch plays no part
    assert r["batch_norm_alone_vs_in_batch"] > 0.1  # unlike batch norm in train mode


def test_weight_decay_equals_l2_for_sgd_not_for_adam():
    r = m.weight_decay_vs_l2()
    # float32 over 50 steps: identical up to rounding when decay is the L2 gradient.
    assert r["sgd_decay_vs_l2"] < 1e-5
    assert r["adam_decay_vs_l2"] < 1e-5  # torch's Adam(weight_decay) *is* L2
    assert r["adamw_vs_adam_l2_rel"] > 0.01  # decoupled decay ends somewhere else


def test_script_writes_one_entry_per_claim_with_its_test(tmp_path, capsys):
    out = tmp_path / "sub" / "notes_checks.json"
    assert notes_checks.main(["--out", str(out)]) == 0
    checks = json.loads(out.read_text())
    assert len(checks) == len(notes_checks.CLAIMS) >= 6
    for check in checks:
        assert set(check) == {"statement", "source", "verdict", "measured", "test"}
        assert check["verdict"] in {"wrong", "imprecise"}
        assert check["source"].startswith("notes/") and ' — "' in check["source"]
        assert any(ch.isdigit() for ch in check["measured"])
        path, name = check["test"].split("::")
        assert path == "tests/test_notes_claims.py" and callable(globals().get(name)), name
    assert f"wrote {out}" in capsys.readouterr().out


def test_script_rejects_a_directory_as_out(tmp_path, capsys):
    assert notes_checks.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--out=" in err and "a file path, not a directory" in err
