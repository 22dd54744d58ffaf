"""A packed member is tested on the best state its ModelCheckpoint wrote at the end of
fit, kept in memory instead of read back (pack/members.py `best_weights`): its test
metrics must be those of the file, whichever way the checkpoint's writes fell (written
when due, or kept in memory and written at the end). The basic launcher reads the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from twins import METRICS_ATOL, metric_diff, results, twins

from neuralab.pack.members import Member
from neuralab.runtime.checkpointing import ModelCheckpoint


@pytest.mark.parametrize("every", [2, 3])
def test_members_are_tested_on_the_state_in_their_best_file(tmp_path_factory, monkeypatch, every):
    def due(self) -> bool:  # a write due every `every`-th save, deterministically
        self.saves_asked = getattr(self, "saves_asked", 0) + 1
        return self.saves_asked % every == 0

    kept = []
    best_weights = Member.best_weights

    def spied(self, device):
        best = self.best_checkpoint
        kept.append(best in self.trainer.checkpoint_callback.written)
        return best_weights(self, device)

    monkeypatch.setattr(ModelCheckpoint, "_due", due)
    monkeypatch.setattr(Member, "best_weights", spied)
    pair = twins(tmp_path_factory, f"best_every_{every}", "seed=1,2,3", "trainer.max_epochs=6")
    assert len(kept) == 3 and any(kept)  # the in-memory state was used
    for packed, basic in pair.pairs:
        assert "test_acc" in results(packed)["metrics"]
        assert metric_diff(packed, basic) <= METRICS_ATOL, packed.name


def test_a_file_written_again_forgets_the_state_kept_for_it(tmp_path):
    """A later write to the best file (due, or a link) makes the kept state stale."""

    class Trainer:
        def save_checkpoint(self, filepath, weights_only=False):
            Path(filepath).write_text("newer")

    callback = ModelCheckpoint(dirpath=tmp_path)
    path = str(tmp_path / "best.ckpt")
    callback.written[path] = {"state_dict": {}}
    callback._write(Trainer(), path, None)
    assert path not in callback.written and Path(path).read_text() == "newer"
