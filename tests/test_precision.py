"""Mixed precision (`trainer.precision=`) and a compiled net (`model.compile=true`).

Each runs a tiny training through `neuralab-train` with `RankProbe`, which records the
dtype of the net's output in a training step (bfloat16 only if autocast was really on)
and whether the net ran compiled. What this torch cannot do here is skipped with the
reason found on this machine, never by a blanket skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import Run
from omegaconf import OmegaConf

from neuralab.compose import build_net
from neuralab.diagnostics.probe import RankProbe
from neuralab.errors import ConfigError
from neuralab.runtime.checkpoint_files import check_same_training

TINY = ["data=xor", "trainer.max_epochs=1", "callbacks.early_stopping=null"]


def probe(out_dir: Path) -> list[str]:
    target = f"{RankProbe.__module__}.{RankProbe.__name__}"
    return [f"+callbacks.probe._target_={target}", f"+callbacks.probe.out_dir={out_dir}"]


def fit_report(out_dir: Path) -> dict:
    return json.loads((out_dir / "fit_rank0.json").read_text())


def trained(run: Run) -> dict:
    assert run.code == 0, run.out
    results = run.results()
    assert results["status"] == "ok"
    return results


def _cpu_bf16_problem() -> str | None:
    """Why bfloat16 autocast does not work on this CPU, or None when it does."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.nn.Linear(2, 2)(torch.ones(1, 2))
    except Exception as exc:  # an old torch, a CPU build without bfloat16 kernels
        return f"CPU bfloat16 autocast fails: {exc}"
    return None if out.dtype == torch.bfloat16 else f"CPU autocast gave {out.dtype}"


@pytest.fixture
def can_compile() -> None:
    """Skip, saying why, when torch.compile fails here (inductor needs a C++ compiler for
    CPU code). Checked when a test asks, not at collection: a first compile takes seconds."""
    try:
        torch.compile(lambda x: torch.relu(x) * 2)(torch.ones(2))
    except Exception as exc:
        pytest.skip(f"torch.compile fails here: {type(exc).__name__}: {str(exc)[:200]}")


BF16_PROBLEM = _cpu_bf16_problem()


@pytest.mark.skipif(BF16_PROBLEM is not None, reason=str(BF16_PROBLEM))
def test_bf16_mixed_on_cpu_runs_under_autocast(run_cli, tmp_path):
    run = run_cli("train", "trainer=cpu", "trainer.precision=bf16-mixed", *TINY, *probe(tmp_path))
    results = trained(run)
    assert results["run_info"]["device"]["precision"] == "bf16-mixed"
    report = fit_report(tmp_path)
    assert report["net_output_dtype"] == "bfloat16"  # autocast was on in training steps
    assert report["precision"] == "bf16-mixed"


def test_default_precision_trains_in_float32(run_cli, tmp_path):
    trained(run_cli("train", "trainer=cpu", *TINY, *probe(tmp_path)))
    assert fit_report(tmp_path)["net_output_dtype"] == "float32"


def test_float16_autocast_on_cpu_is_refused(run_cli):
    # Lightning would quietly train in bfloat16 instead.
    run = run_cli("train", "trainer=cpu", "trainer.precision=16-mixed", *TINY)
    assert run.code == 2, run.out
    assert (
        "neuralab: error: trainer.precision='16-mixed' is not allowed; expected bf16-mixed "
        "or 32-true on CPU (float16 autocast needs a GPU)"
    ) in run.out


def test_unknown_precision_is_refused(run_cli):
    run = run_cli("train", "trainer.precision=8-mixed", *TINY)
    assert run.code == 2, run.out
    assert "trainer.precision='8-mixed' is not allowed; expected one of: 32-true, " in run.out


def test_compile_must_be_true_or_false(run_cli):
    run = run_cli("train", "model.compile=yes", *TINY)
    assert run.code == 2, run.out
    assert "model.compile='yes' is not allowed; expected true or false" in run.out


def test_compiled_net_trains_and_its_checkpoint_loads_uncompiled(run_cli, tmp_path, can_compile):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    train = run_cli("train", "model=mlp", "model.compile=true", *TINY, *probe(tmp_path))
    results = trained(train)
    assert fit_report(tmp_path)["compiled"] is True
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs_before
    events = EventAccumulator(str(train.run_dir))
    events.Reload()
    assert events.Tags()["graph"]  # TensorBoard's graph is traced from the plain net
    linear = [n.name for n in events.Graph().node if "linear" in n.op or "addmm" in n.op]
    assert linear and all("[net]/" in name for name in linear), linear  # nested in the net

    # The checkpoint holds the plain net's keys: it loads into a net that is not compiled.
    checkpoint = torch.load(train.run_dir / "checkpoints/best.ckpt", weights_only=True)
    config = checkpoint["neuralab_config"]
    assert config["model"]["compile"] is True
    plain = build_net(OmegaConf.create({**config, "model": {**config["model"], "compile": False}}))
    state = checkpoint["state_dict"]
    weights = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    plain.load_state_dict(weights, strict=True)

    # neuralab-eval rebuilds the (compiled) net from the checkpoint and reproduces the test.
    evaluated = run_cli("eval", f"run_dir={train.run_dir}")
    assert evaluated.code == 0, evaluated.out
    (eval_dir,) = evaluated.run_dirs("eval")
    metrics = evaluated.results(eval_dir)["metrics"]
    assert metrics["test/loss"] == pytest.approx(results["metrics"]["test_loss"], abs=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_float16_mixed_on_gpu_runs_under_autocast(run_cli, tmp_path):
    run = run_cli("train", "trainer=gpu", "trainer.precision=16-mixed", *TINY, *probe(tmp_path))
    trained(run)
    report = fit_report(tmp_path)
    assert report["net_output_dtype"] == "float16" and report["device"] == "cuda:0"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_net_on_gpu(run_cli, tmp_path, can_compile):
    run = run_cli("train", "trainer=gpu", "model.compile=true", *TINY, *probe(tmp_path))
    trained(run)
    assert fit_report(tmp_path)["compiled"] is True


def test_resuming_may_switch_compilation_but_not_the_net():
    def checkpoint(model: dict) -> dict:
        return {"hyper_parameters": {"config": {"model": model, "seed": 1}}}

    def resume(saved: dict, model: dict) -> None:
        check_same_training(saved, {"model": model, "seed": 1}, Path("last.ckpt"), "resume")

    plain = checkpoint({"hidden_sizes": [8], "compile": False})
    resume(plain, {"hidden_sizes": [8], "compile": True})
    resume(checkpoint({"hidden_sizes": [8]}), {"hidden_sizes": [8], "compile": False})  # older
    with pytest.raises(ConfigError, match=r"model.hidden_sizes=\[8\] in the checkpoint, \[16\]"):
        resume(plain, {"hidden_sizes": [16], "compile": False})
