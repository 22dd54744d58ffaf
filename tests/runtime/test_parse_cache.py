"""Interpolations resolve the same with their parse trees kept, and a bad one still
raises at every read."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf, base, grammar_parser
from omegaconf.errors import GrammarParseError

from neuralab.runtime.parse_cache import parse_interpolations_once

pytestmark = pytest.mark.fast

CONFIG = {
    "data": {"num_classes": 10, "name": "digits"},
    "loss": {"out_features": "${data.num_classes}"},
    "model": {"out_features": "${loss.out_features}", "tag": "mlp_${data.name}_${seed}"},
    "nested": "${oc.env:NEURALAB_PARSE_CACHE_TEST,fallback}/${data.name}",
    "seed": 3,
}


@pytest.fixture
def uncached(monkeypatch):
    monkeypatch.setattr(base, "parse", grammar_parser.parse)  # restored after the test


def test_resolved_values_are_those_of_omegaconf_alone(uncached):
    expected = OmegaConf.to_container(OmegaConf.create(CONFIG), resolve=True)
    parse_interpolations_once()
    parse_interpolations_once()  # wrapped once
    assert base.parse.__wrapped__ is grammar_parser.parse
    resolved = [OmegaConf.to_container(OmegaConf.create(CONFIG), resolve=True) for _ in range(3)]
    assert resolved == [expected] * 3
    assert expected["model"] == {"out_features": 10, "tag": "mlp_digits_3"}
    info = base.parse.cache_info()
    # Four texts, each parsed once; a resolution reads five (model.out_features reads
    # loss.out_features again), so the other 3 x 5 - 4 reads were kept trees.
    assert (info.misses, info.hits) == (4, 11)


def test_a_value_read_after_its_node_changed_follows_the_change(uncached):
    parse_interpolations_once()
    config = OmegaConf.create(CONFIG)
    assert config.model.tag == "mlp_digits_3"
    config.seed, config.data.name = 4, "xor"
    assert config.model.tag == "mlp_xor_4"


def test_a_text_that_fails_to_parse_raises_at_every_read(uncached):
    parse_interpolations_once()
    for _ in range(2):  # (OmegaConf.create refuses it before any read: asked directly)
        with pytest.raises(GrammarParseError):
            base.parse("${b")
    assert base.parse.cache_info().currsize == 0
