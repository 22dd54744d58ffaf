"""Chunks (`data.steps_per_chunk`): one `training_step` call takes K optimizer steps.

A chunk must change how fast training runs, never what it computes: the loader hands out
the same batches in the same order, a resumed loader the same remaining ones, and a
chunked run ends with bit-identical weights (optimizer and schedule state too) at the
same global step, with per-step schedules and clipping inside a chunk. Settings that
count `training_step` calls turn chunks off; divergence and diagnostics still name and
measure single steps.

Digits, batch 64: 20 batches an epoch, so K=7 gives chunks of 7, 7, 6 and the default
K=100 one chunk of 20.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import train_in
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from neuralab.data.loader import EpochSampler, InMemoryLoader
from neuralab.diagnostics.norms import NORM_KINDS
from neuralab.runtime.chunks import Chunk, batches_of
from neuralab.runtime.divergence import Diverged, DivergenceGuard
from neuralab.runtime.tags import metric_name

# ------------------------------------------------------------------------- the loader

SIZE, BATCH = 50, 8  # 7 batches an epoch, the last one short


def make_loader(k: int, rank: int = 0, world: int = 1, pad: bool = False) -> InMemoryLoader:
    """Features and targets are the sample's index, so every row names its sample."""
    x = torch.arange(SIZE, dtype=torch.float32).unsqueeze(1)
    sampler = EpochSampler(SIZE, shuffle=True, seed=0, rank=rank, world_size=world, pad=pad)
    return InMemoryLoader((x, torch.arange(SIZE)), BATCH, sampler, steps_per_chunk=k)


def epoch(loader: InMemoryLoader, number: int) -> list:
    loader.sampler.set_epoch(number)
    return list(loader)


def ids(items: list) -> list[list[int]]:
    """The sample indices of each batch in these loader items, rows checked for pairing."""
    batches = [b for item in items for b in batches_of(item)]
    assert all(torch.equal(x[:, 0], y.float()) for x, y in batches)
    return [y.tolist() for _, y in batches]


@pytest.mark.parametrize("k", [1, 3, 100])
def test_chunks_hold_the_batches_of_k1_in_order(k):
    """Chunking only groups batches: contents, order and reshuffling are K=1's."""
    chunked, plain = make_loader(k), make_loader(1)
    assert plain.num_batches == chunked.num_batches == 7
    assert len(chunked) == math.ceil(7 / k)
    orders = []
    for number in range(3):
        items = epoch(chunked, number)
        assert len(items) == len(chunked)
        if k == 1:
            assert all(isinstance(item, tuple) for item in items)
        else:
            assert all(isinstance(item, Chunk) for item in items)
            assert [len(item) for item in items[:-1]] == [k] * (len(items) - 1)
        batches = ids(items)
        assert batches == ids(epoch(plain, number))
        assert sorted(sum(batches, [])) == list(range(SIZE))  # each sample once
        orders.append(sum(batches, []))
    assert len({tuple(o) for o in orders}) == 3  # a new order every epoch


def test_two_rank_chunks_are_disjoint():
    """Evaluation-style shards (no padding) stay disjoint and complete when chunked."""
    shards = [sum(ids(epoch(make_loader(3, rank, 2), 1)), []) for rank in (0, 1)]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(SIZE))


@pytest.mark.parametrize("k, resume_k, taken", [(3, 3, 1), (3, 2, 2), (1, 3, 4), (100, 3, 1)])
def test_resumed_loader_yields_exactly_the_remaining_batches(k, resume_k, taken):
    """The saved position counts batches, not chunks, so a resume (even with another K)
    trains on the batches left and then on whole epochs again."""
    loader = make_loader(k)
    loader.sampler.set_epoch(2)
    stream = iter(loader)
    consumed = [next(stream) for _ in range(taken)]
    state = loader.state_dict()
    assert state == {"epoch": 2, "batches": len(ids(consumed))}

    resumed = make_loader(resume_k)
    resumed.load_state_dict(state)
    resumed.load_state_dict(state)  # Lightning, then neuralab's resume: skipped once
    full = ids(epoch(make_loader(1), 2))
    assert ids(epoch(resumed, 2)) == full[state["batches"] :]
    assert ids(epoch(resumed, 2)) == full  # only the first pass skips
    assert ids(epoch(resumed, 3)) == ids(epoch(make_loader(1), 3))


# ------------------------------------------------------------------ through the CLI

BASE = ["trainer.max_epochs=2", "trainer.accelerator=cpu", "extras.print_config=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`trained(*overrides)`: the run dir of neuralab-train with them, each run once."""
    cache: dict[tuple[str, ...], Path] = {}

    def get(*overrides: str, logger: str = "none") -> Path:
        key = (*overrides, logger)
        if key not in cache:
            root = tmp_path_factory.mktemp("run")
            train_in(root, *BASE, f"logger={logger}", *overrides)
            (cache[key],) = [p for p in root.glob("logs/train/runs/*") if (p / ".hydra").is_dir()]
        return cache[key]

    return get


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("block_bytes", [1, 3 * BATCH * 12, 1 << 20])  # 1, 3, 7 batches
def test_a_chunk_gathered_in_blocks_is_the_same_chunk(monkeypatch, block_bytes):
    """Blocks change when rows are gathered, never which: any block size, any access
    order (last first, slices, iteration) gives the batches of one whole gather."""
    monkeypatch.setattr(Chunk, "BLOCK_BYTES", block_bytes)  # a row: 4 + 8 bytes
    x, y = torch.arange(SIZE, dtype=torch.float32).unsqueeze(1), torch.arange(SIZE)
    idx = torch.randperm(SIZE, generator=torch.Generator().manual_seed(0))
    whole = list(zip(x[idx].split(BATCH), y[idx].split(BATCH), strict=True))
    chunk = Chunk((x, y), idx, BATCH)
    assert chunk.block == min(block_bytes // (BATCH * 12) or 1, 7) and len(chunk) == 7
    last = chunk[-1]
    assert [b[1].tolist() for b in chunk[:-1]] == [b[1].tolist() for b in whole[:-1]]
    assert last is chunk[6] and torch.equal(last[0], whole[-1][0])  # kept, not re-gathered
    assert all(same(a, b) for a, b in zip(chunk, whole, strict=True))
    with pytest.raises(IndexError):
        chunk[7]


def same(a: object, b: object) -> bool:
    """Exact equality of nested checkpoint state (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def assert_same_steps(a: Path, b: Path) -> None:
    """The same optimizer steps: weights, optimizer and schedule state bit for bit."""
    ca, cb = checkpoint(a), checkpoint(b)
    assert ca["global_step"] == cb["global_step"]
    for part in ("state_dict", "optimizer_states", "lr_schedulers"):
        assert same(ca[part], cb[part]), part


def assert_same_metrics(a: Path, b: Path) -> None:
    ma, mb = (results(d)["metrics"] for d in (a, b))
    assert ma.keys() == mb.keys()
    for name in ma:  # the epoch means sum in another order
        assert ma[name] == pytest.approx(mb[name], abs=1e-5), name


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def timing(run_dir: Path) -> dict:
    return json.loads((run_dir / "timing.json").read_text())


@pytest.mark.parametrize(
    "extra",
    [[], ["scheduler=onecycle"], ["trainer.gradient_clip_val=0.5"]],
    ids=["plain", "onecycle", "clip"],
)
def test_chunked_runs_take_exactly_the_steps_of_unchunked_ones(trained, extra):
    """K=1 is Lightning's own loop; K=7 and K=100 take inner steps themselves, which must
    apply the per-step schedule and the clipping exactly as Lightning does."""
    one = trained(*extra, "data.steps_per_chunk=1")
    assert checkpoint(one)["global_step"] == 40
    for chunked in (trained(*extra, "data.steps_per_chunk=7"), trained(*extra)):
        assert_same_steps(one, chunked)
        assert_same_metrics(one, chunked)
        assert timing(chunked)["train_steps"] == 40  # RunTimer counts the steps of chunks
        assert timing(chunked)["train_samples"] == timing(one)["train_samples"]
    if extra:  # the option changed training, so the comparison above covered it
        plain = trained("data.steps_per_chunk=1")
        assert not same(checkpoint(one)["state_dict"], checkpoint(plain)["state_dict"])


def test_step_limits_turn_chunks_off(trained):
    """limit_train_batches counts training_step calls: chunked, 3 calls would be 60
    steps. Batches must then come one per call, 3 steps an epoch."""
    run = trained("++trainer.limit_train_batches=3")
    assert checkpoint(run)["global_step"] == 6
    unchunked = trained("++trainer.limit_train_batches=3", "data.steps_per_chunk=1")
    assert_same_steps(run, unchunked)
    assert_same_metrics(run, unchunked)


@pytest.mark.filterwarnings("ignore:.*could not find the monitored key")
@pytest.mark.parametrize("max_steps", [5, 25])
def test_max_steps_turns_chunks_off(trained, max_steps):
    """Lightning checks max_steps between training_step calls: a chunk would overrun it,
    or, cut short, end the epoch where the unchunked run stops mid-epoch without
    validating. So with max_steps batches come one per call, and the runs match. Early
    stopping off: a run stopped inside its first epoch has no val/loss to monitor."""
    limit = "callbacks.early_stopping=null", f"++trainer.max_steps={max_steps}"
    run, unchunked = trained(*limit), trained(*limit, "data.steps_per_chunk=1")
    assert checkpoint(run)["global_step"] == max_steps
    assert_same_steps(run, unchunked)
    assert_same_metrics(run, unchunked)
    bests = [d / "checkpoints" / "best.ckpt" for d in (run, unchunked)]
    assert bests[0].is_file() == bests[1].is_file() == (max_steps > 20)  # validated epoch 0
    if max_steps > 20:
        steps = [torch.load(b, weights_only=True)["global_step"] for b in bests]
        assert steps == [20, 20]


# ---------------------------------------------------------------------- divergence


def test_guard_names_the_first_bad_step_of_a_chunk(tmp_path):
    """A chunk reports all its step losses at once (starting at `_step`): the guard must
    name the first bad one by its own step, and keep it over later ones."""
    guard = DivergenceGuard(check_every_n_steps=20, last_checkpoint=tmp_path / "last.ckpt")
    guard._step = 10
    guard._record(torch.tensor([1.0, 2.0, 3.0]))
    guard.check()  # all finite: no stop
    guard._step = 13
    guard._record(torch.tensor([1.0, 2.0, math.nan, math.inf]))
    guard._step = 17
    guard._record(torch.tensor([math.inf]))  # later bad steps do not replace the first
    with pytest.raises(Diverged, match="loss is nan at step 15") as caught:
        guard.check()
    assert caught.value.step == 15


def test_guard_checks_when_a_chunk_passes_a_multiple_of_n(tmp_path):
    """A chunk jumps over step 20 in one call: the batch end must still check there."""

    class Trainer:
        global_step = 18

    guard = DivergenceGuard(check_every_n_steps=20, last_checkpoint=tmp_path / "last.ckpt")
    trainer = Trainer()
    guard.on_train_batch_start(trainer, None, None, 0)
    trainer.global_step = 22
    outputs = {"loss": torch.tensor(1.0), "step_losses": torch.tensor([1.0, math.nan, 1, 1])}
    with pytest.raises(Diverged, match="at step 19"):
        guard.on_train_batch_end(trainer, None, outputs, None, 0)


def test_a_run_diverging_inside_a_chunk_names_the_same_step(run_cli):
    """SGD at lr=100 blows up within a few steps on digits, inside the first chunk: the
    chunked run must name the step the unchunked one names, not its chunk's first."""
    seen: list[Path] = []
    for k in (1, 100):
        run = run_cli("train", *BASE, "logger=none", "optimizer=sgd", "optimizer.lr=100",
                      f"data.steps_per_chunk={k}")  # fmt: skip
        assert run.code == 3, run.out
        seen += [d for d in run.run_dirs() if d not in seen]
    first, chunked = (results(d) for d in seen)
    assert first["status"] == chunked["status"] == "diverged"
    assert 0 < chunked["diverged_at_step"] == first["diverged_at_step"] < 20


# --------------------------------------------------------------------- diagnostics


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Metric name (`update_ratio/...`, `train/loss`) -> points, from the event files."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        metric_name(t): [(e.step, e.value) for e in events.Scalars(t)]
        for t in events.Tags()["scalars"]
    }


def test_diagnostics_measure_single_steps_inside_chunks(trained):
    """Every 3rd step of 40: inner steps (0..36) and the last one Lightning takes (39).
    A measurement completed too early reads an update ratio of 0, too late a larger
    one than the unchunked run's. Every other scalar (train/loss...) must sit at the
    unchunked run's step too: inner steps advance the logging x-axis."""
    cadence = "callbacks.diagnostics.every_n_steps=3"
    chunked = scalars(trained(cadence, logger="tensorboard"))
    plain = scalars(trained(cadence, "data.steps_per_chunk=1", logger="tensorboard"))
    assert chunked.keys() == plain.keys()
    norms = [t for t in chunked if t.startswith(NORM_KINDS)]
    assert len(norms) == 3 * len(NORM_KINDS)  # three Linear layers
    for tag in norms:
        assert [s for s, _ in chunked[tag]] == list(range(0, 40, 3)), tag
    for tag, points in chunked.items():
        assert [s for s, _ in points] == [s for s, _ in plain[tag]], tag
        values = [v for _, v in points]
        assert values == pytest.approx([v for _, v in plain[tag]], rel=1e-5, abs=1e-6), tag
        if tag.startswith("update_ratio/"):
            assert all(math.isfinite(v) and v > 0 for v in values), tag


def test_a_fault_aimed_inside_a_chunk_acts_at_its_start(run_cli):
    """Batch hooks run once per chunk: RaiseAt(25) must not be skipped because step 25
    is no chunk boundary (digits: chunks of 20 steps, one an epoch). It fires at the
    start of the chunk holding step 25, i.e. after epoch 0, at global step 20."""
    fault = ["+callbacks.fault._target_=neuralab.runtime.faults.RaiseAt"]
    run = run_cli("train", *BASE, "logger=none", *fault, "+callbacks.fault.at_step=25")
    assert run.code == 1, run.out[-2000:]
    assert "injected failure at step 25" in run.results()["error"]
    last = torch.load(run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 20  # epoch 0 done, nothing of epoch 1


def test_the_progress_bar_counts_steps_and_draws_no_validation_bar(run_cli):
    """Chunked, Lightning's own bar would show 1/1 an epoch (training_step calls); this
    one shows the 20 steps of a digits epoch, and no validation bar inside fit."""
    bar = "callbacks.progress_bar.terminal=true"  # as on a terminal (pytest captures stdout)
    run = run_cli("train", *BASE, "logger=none", "test=false", bar, fast=False)
    assert run.code == 0, run.out[-2000:]
    assert "Epoch 1: 100%" in run.out and "20/20" in run.out
    assert "val/acc=" in run.out  # the epoch's values on the bar
    assert "1/1 [" not in run.out.split("Epoch 0")[1]  # no chunk-count bar after it starts
    assert "Validation DataLoader" not in run.out
