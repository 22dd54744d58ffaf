"""runtime/instantiate.py builds what hydra.utils.instantiate(node, _convert_="all")
builds, and leaves every other node, and every failure, to Hydra."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import OmegaConf, open_dict, read_write

from neuralab.runtime import instantiate as fast
from neuralab.runtime.config import config_dir, register_resolvers

PLAIN = (int, float, str, bool, type(None))


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    register_resolvers()
    out = str(tmp_path_factory.mktemp("run"))
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        full = compose("train", overrides=[f"hydra.run.dir={out}"], return_hydra_config=True)
    with read_write(full.hydra.runtime), open_dict(full.hydra.runtime):
        full.hydra.runtime.output_dir = out
    HydraConfig.instance().set_config(full)
    yield full
    HydraConfig.instance().cfg = None


def same(a, b) -> None:
    assert type(a) is type(b)
    for key, value in vars(a).items():
        other = vars(b)[key]
        if isinstance(value, PLAIN) or isinstance(value, list | dict | tuple):
            assert repr(value) == repr(other), key
        else:
            assert type(value) is type(other), key


def nodes(config):
    found = [config.data]
    for group in ("callbacks", "logger"):
        found += [n for n in (config.get(group) or {}).values() if n is not None]
    return found


def test_each_configured_part_is_hydras(config, monkeypatch):
    called = []
    monkeypatch.setattr(fast, "hydra_instantiate", lambda *a, **k: called.append(a))
    built = [fast.instantiate(node) for node in nodes(config)]
    assert not called  # all of them took the direct path
    monkeypatch.undo()
    for node, mine in zip(nodes(config), built, strict=True):
        same(mine, hydra_instantiate(node, _convert_="all"))


def test_keyword_arguments_win_as_hydra_merges_them(config):
    node = config.trainer
    mine = fast.instantiate(node, max_epochs=3, logger=False, enable_progress_bar=False)
    theirs = hydra_instantiate(
        node, max_epochs=3, logger=False, enable_progress_bar=False, _convert_="all"
    )
    assert mine.max_epochs == theirs.max_epochs == 3
    assert type(mine) is type(theirs)


def test_other_nodes_and_failures_are_hydras(monkeypatch):
    nested = OmegaConf.create(
        {"_target_": "builtins.dict", "inner": {"_target_": "builtins.list"}, "x": 1}
    )
    assert fast.instantiate(nested) == {"inner": [], "x": 1}  # Hydra built the inner one
    partial = OmegaConf.create({"_target_": "builtins.dict", "_partial_": True, "x": 1})
    assert fast.instantiate(partial)() == {"x": 1}
    bad = OmegaConf.create({"_target_": "collections.OrderedDict", "nope": 1, "_args_": [1]})
    with pytest.raises(InstantiationException) as hydras:
        hydra_instantiate(bad, _convert_="all")
    with pytest.raises(InstantiationException) as mine:
        fast.instantiate(bad)
    assert str(mine.value) == str(hydras.value)
    unknown = OmegaConf.create({"_target_": "lightning.pytorch.callbacks.Timer", "nope": 1})
    with pytest.raises(InstantiationException, match="nope"):
        fast.instantiate(unknown)  # the direct call failed: Hydra's error, not a TypeError
