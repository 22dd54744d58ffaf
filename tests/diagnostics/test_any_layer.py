"""Init schemes, diagnostics and HParams columns for nets that are not the MLP.

The conv net is the fork example of tests/fixtures (one .py, one .yaml), run as a
forker runs it: `neuralab-train model=small_conv` in a fresh process, with the
fixture's conf dir on Hydra's search path and its src dir on PYTHONPATH.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import EventsByName
from repo_copy import ROOT, env_with_src
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch import nn

from neuralab.diagnostics.norms import NORM_KINDS
from neuralab.init import apply_init

FIXTURES = ROOT / "tests" / "fixtures"
SIZE_GUIDANCE = {k: 0 for k in ("scalars", "tensors", "histograms", "images")}
QUICK = [
    "trainer.max_epochs=2",
    "++trainer.limit_train_batches=4",
    "++trainer.limit_val_batches=1",
    "test=false",
    "callbacks.early_stopping=null",
    "callbacks.diagnostics.every_n_steps=2",
    "callbacks.diagnostics.every_n_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "++callbacks.progress_bar=null",
]
# SmallConvNet(64, 10, channels=8, kernel_size=3): conv 1->8, ReLU, pool, conv 8->16, ReLU.
CONV_LAYERS = ["layer00_features.0", "layer01_features.3", "layer02_head"]
CONV_ACTS = ["layer00_features.1", "layer01_features.4"]
# He-normal std sqrt(2 / fan_in), fan_in = in_channels * 3 * 3 (torch.nn.init's fans).
HE_STD = {"layer00_features.0": math.sqrt(2 / 9), "layer01_features.3": math.sqrt(2 / 72)}


def neuralab_train(cwd: Path, *overrides: str) -> str:
    """`neuralab-train` in a fresh process, the fixtures visible as a fork's own files."""
    args = [
        str(Path(sys.executable).with_name("neuralab-train")),
        f"hydra.searchpath=[file://{FIXTURES / 'conf'}]",
        *overrides,
    ]
    cwd.mkdir(parents=True, exist_ok=True)
    env = env_with_src(FIXTURES / "src")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def run_events(root: Path) -> EventAccumulator:
    (run_dir,) = [p for p in root.glob("logs/train/runs/*") if (p / ".hydra").is_dir()]
    events = EventAccumulator(str(run_dir), size_guidance=SIZE_GUIDANCE)
    events.Reload()
    return EventsByName(events)  # the names the diagnostics log (runtime/tags.py)


def hparams_row(events: EventAccumulator) -> dict[str, object]:
    """The run's row of TensorBoard's HParams table, from the plugin's own protos."""
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


def tags(events: EventAccumulator, kind: str, prefix: str) -> list[str]:
    return sorted(t for t in events.Tags()[kind] if t.startswith(prefix))


def histogram_std(events: EventAccumulator, tag: str, index: int = 0) -> float:
    h = events.Histograms(tag)[index].histogram_value
    return math.sqrt(h.sum_squares / h.num - (h.sum / h.num) ** 2)


@pytest.fixture(scope="module")
def conv(tmp_path_factory) -> tuple[EventAccumulator, str]:
    """The conv fixture, He-initialised, a few steps; its events and its output."""
    root = tmp_path_factory.mktemp("conv")
    out = neuralab_train(root, "model=small_conv", "init=he_normal", *QUICK)
    return run_events(root), out


def test_he_normal_reaches_the_conv_weights(conv):
    events, _ = conv
    # The histogram at step 0 is taken before the first update: the initial weights.
    for tag, expected in HE_STD.items():
        std = histogram_std(events, f"weights/{tag}")
        # 72 and 1152 weights: a sample std within ~3 standard errors of He's std, far
        # from torch's default (kaiming_uniform a=sqrt(5): std 1/sqrt(3 fan_in), ~0.4x).
        assert std == pytest.approx(expected, rel=0.25 if tag.endswith("0") else 0.08), tag


def test_torchs_default_conv_init_would_fail_that_check():
    """The check above can fail: the conv's own init has another std."""
    sys.path.insert(0, str(FIXTURES / "src"))
    try:
        from fork_examples.conv_net import SmallConvNet
    finally:
        sys.path.remove(str(FIXTURES / "src"))
    torch.manual_seed(0)
    conv = SmallConvNet(64, 10).features[3]
    assert conv.weight.std().item() < 0.6 * HE_STD["layer01_features.3"]
    apply_init(nn.Sequential(conv), "he_normal", "relu")
    assert conv.weight.std().item() == pytest.approx(HE_STD["layer01_features.3"], rel=0.08)


@pytest.mark.parametrize(
    "layer",
    [nn.Conv1d(16, 32, 5), nn.Conv3d(4, 8, 3, groups=2), nn.ConvTranspose2d(16, 8, 4)],
    ids=["conv1d", "conv3d_groups", "conv_transpose2d"],
)
def test_he_normal_uses_torchs_fan_in_for_every_conv(layer):
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    torch.manual_seed(0)
    apply_init(nn.Sequential(layer), "he_normal", "relu")
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.1)
    assert torch.count_nonzero(layer.bias) == 0


def test_conv_layers_have_norms_histograms_and_activation_stats(conv):
    events, _ = conv
    for kind in NORM_KINDS:
        assert tags(events, "scalars", f"{kind}/") == [f"{kind}/{t}" for t in CONV_LAYERS]
        assert [p.step for p in events.Scalars(f"{kind}/{CONV_LAYERS[0]}")] == [0, 2, 4, 6]
    assert tags(events, "histograms", "weights/") == [f"weights/{t}" for t in CONV_LAYERS]
    assert tags(events, "histograms", "grads/") == [f"grads/{t}" for t in CONV_LAYERS]
    for kind in ("act_mean", "act_std", "act_dead"):  # relu: no saturation
        assert tags(events, "scalars", f"{kind}/") == [f"{kind}/{a}" for a in CONV_ACTS]
    dead = [e.value for a in CONV_ACTS for e in events.Scalars(f"act_dead/{a}")]
    assert all(0 <= v <= 1 for v in dead)


def test_conv_hparams_are_the_nets_own_keys(conv):
    row = hparams_row(conv[0])
    assert row["model"] == "small_conv"
    assert (row["channels"], row["kernel_size"], row["activation"]) == (8, 3, "relu")
    assert not {"width", "depth", "hidden_sizes", "in_features", "compile"} & set(row)


def test_nothing_skipped_no_init_line(conv):
    _, out = conv
    assert "init=he_normal:" not in out


def test_skipped_norm_layers_are_named_once(run_cli):
    run = run_cli("train", "model=mlp_batchnorm", "init=he_normal", *QUICK[:5])
    assert run.code == 0, run.out[-3000:]
    lines = [line for line in run.out.splitlines() if "init=he_normal:" in line]
    assert len(lines) == 1, lines
    assert "blocks.0.norm (BatchNorm1d), blocks.1.norm (BatchNorm1d)" in lines[0]
    assert "as usual for norm layers" in lines[0]
    log_file = (run.run_dir / "train.log").read_text()
    assert log_file.count("init=he_normal:") == 1
