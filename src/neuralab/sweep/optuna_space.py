"""The search space of an Optuna sweep, written in Hydra's own sweep syntax.

    hydra.sweeper.params:                            # or the same on the command line
      optimizer.lr: tag(log, interval(1e-4, 1e-1))   # float in [low, high], log scale
      model.dropout: interval(0.0, 0.5)              # float, uniform
      trainer.max_epochs: range(10, 41, 10)          # int 10, 20, 30, 40 (stop excluded)
      model.activation: choice(relu, tanh, gelu)     # categorical; relu,tanh,gelu: the same
      optimizer: choice(sgd, adam)                   # a config group: a trial picks an option
      model.hidden_sizes: "choice([64], [64,64])"    # lists are categories too
      init: glob(*)                                  # every option of a group
      seed: 1                                        # one value: the same in every trial

One entry is one Optuna distribution. A sweep on the command line (`optimizer.lr=interval(...)`)
adds to `params` or replaces the entry of the same key; a plain `key=value` there fixes that
key for every trial and takes it out of the search. Each bad entry is one ConfigError that
names the entry, its value and what is allowed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from neuralab.errors import ConfigError

SYNTAX = (
    "choice(a, b, ...), a,b,..., glob(...), range(start, stop[, step]), interval(low, high), "
    "tag(log, interval(...)) or tag(log, range(...)), or a single value"
)
LOG = "log"


class SearchSpaceError(Exception):
    """Every bad entry of a search space at once: the user fixes them in one go."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class Param:
    """One searched setting: its override key (with any +/++ prefix) and its distribution."""

    key: str
    distribution: BaseDistribution
    grid: tuple | None  # every value, in order; None for interval() (not enumerable)

    @property
    def name(self) -> str:
        """The name Optuna stores: the key without its +/++ prefix."""
        return self.key.lstrip("+")

    def override(self, value: Any) -> str:
        return f"{self.key}={value}"


@dataclass(frozen=True)
class SearchSpace:
    params: list[Param]
    fixed: list[str]  # overrides every trial gets as they are

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.name: p.distribution for p in self.params}

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: the fixed ones, then one per parameter it has."""
        keys = {p.name: p for p in self.params}
        chosen = [
            keys[name].override(value) if name in keys else f"{name}={value}"
            for name, value in values.items()
        ]
        return [*self.fixed, *chosen]

    def probe(self) -> list[str]:
        """Overrides with each parameter at one of its values: checks that a trial composes."""
        return self.overrides({p.name: _any_value(p.distribution) for p in self.params})

    def grid_points(self) -> list[dict[str, Any]]:
        """The cartesian product of every parameter's values, the first parameter slowest
        (the basic sweeper's order). Needs a space parsed with grid=True."""
        names = [p.name for p in self.params]
        values = itertools.product(*(p.grid for p in self.params))
        return [dict(zip(names, point, strict=True)) for point in values]


def _any_value(dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0]
    return dist.low


def parse_space(
    params: Mapping[str, Any] | None, arguments: Iterable[str], parser: OverridesParser, grid: bool
) -> SearchSpace:
    """The search space from `hydra.sweeper.params` and the command line's overrides;
    with `grid`, every parameter must be enumerable (no interval)."""
    entries, errors = _entries(params or {}, arguments, parser)
    searched, fixed = [], []
    for override, setting in entries:
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        try:
            searched.append(to_param(override, setting, grid))
        except ConfigError as exc:
            errors.append(exc)
    if not searched and not errors:
        allowed = "at least one searched setting (choice, range or interval) there or on the "
        errors.append(
            ConfigError("hydra.sweeper.params", dict(params or {}), allowed + "command line")
        )
    if errors:
        raise SearchSpaceError(errors)
    return SearchSpace(searched, fixed)


def _entries(
    params: Mapping[str, Any], arguments: Iterable[str], parser: OverridesParser
) -> tuple[list[tuple[Override, str]], list[ConfigError]]:
    """(override, the setting an error names) per key, and the entries that do not parse.
    The command line comes last and replaces an entry of `params` with the same key."""
    entries: dict[str, tuple[Override, str]] = {}
    errors: list[ConfigError] = []
    for key, value in params.items():
        setting = f"hydra.sweeper.params.{key}"
        try:
            (override,) = parser.parse_overrides([f"{key}={value}"])
        except HydraException:
            errors.append(ConfigError(setting, str(value), SYNTAX))
            continue
        entries[override.key_or_group] = (override, setting)
    for override in parser.parse_overrides(list(arguments)):  # Hydra has parsed them once
        entries.pop(override.key_or_group, None)
        entries[override.key_or_group] = (override, override.get_key_element())
    return list(entries.values()), errors


def to_param(override: Override, setting: str, grid: bool = False) -> Param:
    """One sweep override as an Optuna distribution; a ConfigError naming `setting` if it
    cannot be one (or, for grid search, if it is an interval)."""
    try:
        param = _to_param(override)
        if grid and param.grid is None:
            raise _Refused("choice(...) or range(...) for grid search (interval has no grid)")
        return param
    except _Refused as exc:
        raise ConfigError(setting, override.input_line.partition("=")[2], str(exc)) from None


class _Refused(Exception):
    """What is allowed instead (to_param adds the setting and its value)."""


def _to_param(override: Override) -> Param:
    key, sweep = override.get_key_element(), override.value()
    tags = set(getattr(sweep, "tags", None) or ())
    if tags - {LOG}:
        raise _Refused("no tag but log: tag(log, interval(...))")
    log = LOG in tags
    if isinstance(sweep, IntervalSweep):
        return _interval(key, float(sweep.start), float(sweep.end), log)
    if isinstance(sweep, RangeSweep):
        return _range(key, list(override.sweep_iterator()), int(sweep.step) < 0, log)
    if override.is_choice_sweep():  # choice(...), a,b,c and glob(...)
        if log:
            raise _Refused("a choice without tag(log, ...), which is for interval and range")
        values = list(override.sweep_iterator())
        return _choice(key, values, list(override.sweep_string_iterator()))
    raise _Refused(SYNTAX)


def _interval(key: str, low: float, high: float, log: bool) -> Param:
    if not low < high:
        raise _Refused("interval(low, high) with low < high")
    if log and low <= 0:
        raise _Refused("a log interval with low > 0")
    return Param(key, FloatDistribution(low, high, log=log), None)


def _range(key: str, values: list, descending: bool, log: bool) -> Param:
    if not values:
        raise _Refused("a range with at least one value")
    if not all(isinstance(v, int) for v in values):
        # A float range is a list of numbers: searched as categories, its exact steps kept.
        if log:
            raise _Refused("tag(log, range(...)) over integers")
        return Param(key, CategoricalDistribution(values), tuple(values))
    if descending:  # range(10, 0, -2): the same set as range(2, 11, 2)
        values = values[::-1]
    step = values[1] - values[0] if len(values) > 1 else 1
    if log and (step != 1 or values[0] < 1):
        raise _Refused("tag(log, range(start, stop)) with start >= 1 and step 1")
    dist = IntDistribution(values[0], values[-1], log=log, step=step)
    return Param(key, dist, tuple(values))


def _choice(key: str, values: list, texts: list[str]) -> Param:
    if not values:
        raise _Refused("at least one choice")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    # Optuna stores numbers, strings, bools and None; a list (hidden sizes) or a mix is kept
    # as the text of its override, which is also what the trial's override needs.
    categories = values if numbers else texts
    if len(set(map(str, categories))) != len(categories):
        raise _Refused("choices that differ from each other")
    return Param(key, CategoricalDistribution(categories), tuple(categories))
