"""Each job's config composed once, and most of them without composing at all.

Composing a job's config from conf/ takes ~0.3 s here (every YAML file read, parsed and
merged), and Hydra does it twice per job: the sweeper checks every job of a batch
(`validate_batch_is_legal`), then the launcher composes it again. For a packed sweep of
tiny nets that was most of the time. So, for `hydra/launcher=packed`:

- the launcher takes the config the sweeper's check composed (`take`), once;
- a job whose overrides differ from an already composed job's only in values of plain
  settings (`seed=2` vs `seed=1`, `optimizer.lr=...`; not a group choice such as
  `optimizer=sgd`, nor `+`/`~` overrides) gets a copy of that config (unpickled: 3 ms,
  where a deep copy takes 19: OmegaConf supports both, with equal results) with its values
  set the way Hydra sets command-line values (its `_apply_overrides_to_config`), and its
  own `hydra.overrides.task` and `hydra.job.override_dirname`. tests/pack compares the
  job dirs' `.hydra/` files with the basic launcher's.
"""

from __future__ import annotations

import pickle
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf


class Compositions:
    def __init__(self, loader: Any):
        self.loader, self.compose = loader, loader.load_sweep_config
        self.parser = OverridesParser.create()
        self.kept: dict[tuple, DictConfig] = {}  # composed for the sweeper's check
        self.bases: dict[tuple, bytes] = {}  # pristine configs to derive from, pickled
        loader.load_sweep_config = self.check

    def check(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """What the sweeper calls: composed (or derived) and kept for the launcher."""
        config = self._new(master_config, list(sweep_overrides))
        self.kept[(id(master_config), tuple(sweep_overrides))] = config
        return config

    def take(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """What the launcher calls: the checked config, or a new one."""
        key = (id(master_config), tuple(sweep_overrides))
        return self.kept.pop(key, None) or self._new(master_config, list(sweep_overrides))

    def _new(self, master_config: DictConfig, overrides: list[str]) -> DictConfig:
        parsed = self.parser.parse_overrides(overrides)
        shape = (id(master_config), *(self._shape(o) for o in parsed))
        base = self.bases.get(shape)
        if base is None:
            config = self.compose(master_config, overrides)
            self.bases[shape] = pickle.dumps(config)
            return config
        config = pickle.loads(base)
        ConfigLoaderImpl._apply_overrides_to_config([o for o in parsed if self._value(o)], config)
        config.hydra.overrides.task = overrides
        names = config.hydra.job.config.override_dirname
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=parsed,
            exclude_keys=list(names.exclude_keys),
            item_sep=names.item_sep,
            kv_sep=names.kv_sep,
        )
        OmegaConf.copy_cache(from_config=master_config, to_config=config)
        return config

    def _shape(self, override: Override) -> str:
        """What two jobs must share for one's config to be derived from the other's."""
        return override.key_or_group if self._value(override) else override.input_line

    def _value(self, override: Override) -> bool:
        """A plain `key=value` of a setting: not a group choice, nor +/~/++."""
        if override.type != OverrideType.CHANGE or override.package is not None:
            return False
        key = override.key_or_group
        return "." in key or not self.loader.repository.group_exists(key)
