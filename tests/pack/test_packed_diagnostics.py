"""Packed members' diagnostics are their lone runs': the same TensorBoard tags (norms,
activations, histograms, pictures) at the same steps, the scalars within float
tolerance (pack/watch.py drives each member's Diagnostics callback)."""

from __future__ import annotations

import pytest
from test_tensorboard import load
from twins import results, twins

DIAGNOSTICS = "diagnostics/"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    # 2-D data: the decision boundary too. min_delta=1.0: that member stops early (after
    # epoch 2, its final pictures then), the other trains on to max_epochs.
    return twins(
        tmp_path_factory,
        "diagnostics",
        "data=moons",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=1.0,0.0",
        "trainer.max_epochs=4",
        "callbacks.diagnostics.every_n_epochs=2",
        "callbacks.diagnostics.every_n_steps=2",
        quiet=False,
    )


def test_one_member_stopped_early(pair):
    assert [results(job)["epochs"] for job in pair.packed] == [2, 4]


def diagnostics(events, kind: str) -> list[str]:
    return sorted(t for t in events.Tags()[kind] if t.startswith(DIAGNOSTICS))


@pytest.mark.parametrize("kind", ["scalars", "histograms", "images"])
def test_the_same_diagnostics_at_the_same_steps(pair, kind):
    for packed, basic in pair.pairs:
        ep, eb = load(packed), load(basic)
        tags = diagnostics(eb, kind)
        assert tags and diagnostics(ep, kind) == tags, packed.name
        read = {"scalars": ep.Scalars, "histograms": ep.Histograms, "images": ep.Images}[kind]
        lone = {"scalars": eb.Scalars, "histograms": eb.Histograms, "images": eb.Images}[kind]
        for tag in tags:
            assert [e.step for e in read(tag)] == [e.step for e in lone(tag)], tag


def test_diagnostics_values_are_the_lone_runs(pair):
    kinds = set()
    for packed, basic in pair.pairs:
        ep, eb = load(packed), load(basic)
        for tag in diagnostics(eb, "scalars"):
            kinds.add(tag.split("/")[1])
            got = [e.value for e in ep.Scalars(tag)]
            expected = [e.value for e in eb.Scalars(tag)]
            assert got == pytest.approx(expected, rel=1e-3, abs=1e-5), tag
    assert {"grad_norm", "weight_norm", "update_ratio", "act_mean", "act_dead"} <= kinds


def test_pictures_include_the_decision_boundary_and_the_test_split(pair):
    for packed, _ in pair.pairs:
        images = diagnostics(load(packed), "images")
        assert any("decision_boundary" in t for t in images), images
        assert any(t.endswith("test/confusion_matrix") for t in images), images


def test_confusion_matrices_are_the_lone_runs_pictures(pair):
    """Drawn from the pack's one forward of all members (pack/watch.py): the same
    predictions, so the same picture, byte for byte."""
    for packed, basic in pair.pairs:
        ep, eb = load(packed), load(basic)
        tags = [t for t in diagnostics(eb, "images") if t.endswith("confusion_matrix")]
        assert len(tags) == 2, tags  # val and test
        for tag in tags:
            got = [e.encoded_image_string for e in ep.Images(tag)]
            assert got == [e.encoded_image_string for e in eb.Images(tag)], (packed.name, tag)
