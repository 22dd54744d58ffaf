"""What an experiment config promises the report: its `report:` block and its sweep axes.

An experiment is conf/experiment/<name>.yaml (`# @package _global_`) with a sweep in
`hydra.sweeper.params` and a `report:` block that training ignores:

    report:
      title: Activation functions      # section title in docs/EXPERIMENTS.md
      claim: >-                        # the claim being tested
        ...
      table: [best_val_acc, epochs_to_target]  # results.csv columns or MEASURES names
      curve: val/acc                   # a scalar tag, or a prefix ending in "/"
      smoke: [trainer.max_epochs=2, "hydra.sweeper.params.seed=1"]  # a seconds-long sweep

The file is read as plain YAML: the report block and the sweep are written literally
in it, and reading them needs no Hydra composition (the tests compose as well).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from neuralab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf" / "experiment"
SEED_KEY = "seed"
REQUIRED_TEXT = ("title", "claim", "curve")


@dataclass
class Experiment:
    name: str
    title: str
    claim: str
    table: list[str]
    curve: str
    smoke: list[str] = field(default_factory=list)
    axes: list[str] = field(default_factory=list)  # swept keys, seed excluded, file order

    @property
    def command(self) -> str:
        """The command that reproduces this experiment's table."""
        return f"neuralab-train -m experiment={self.name}"

    def run_command(self, sweep_dir: Path | str) -> str:
        return f"{self.command} hydra.sweep.dir={sweep_dir}"


def _text(name: str, report: dict, key: str) -> str:
    value = report.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"experiment {name}: report.{key}", value, "a non-empty string")
    return value.strip()


def _names(name: str, report: dict, key: str, required: bool) -> list[str]:
    value = report.get(key, None if required else [])
    if not isinstance(value, list) or (required and not value):
        allowed = "a non-empty list of names" if required else "a list of overrides"
        raise ConfigError(f"experiment {name}: report.{key}", value, allowed)
    return [str(v) for v in value]


def from_dict(name: str, config: dict) -> Experiment:
    """An Experiment from the parsed YAML of conf/experiment/<name>.yaml."""
    report = config.get("report")
    if not isinstance(report, dict):
        raise ConfigError(
            f"experiment {name}: report", report, "a report: block (title, claim, table, curve)"
        )
    params = ((config.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return Experiment(
        name=name,
        title=_text(name, report, "title"),
        claim=_text(name, report, "claim"),
        table=_names(name, report, "table", required=True),
        curve=_text(name, report, "curve"),
        smoke=_names(name, report, "smoke", required=False),
        axes=[str(k).lstrip("+~") for k in params if str(k).lstrip("+~") != SEED_KEY],
    )


def read_yaml(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError("experiment file", str(path), f"readable YAML ({exc})") from None
    return config if isinstance(config, dict) else {}


def config_names(conf_dir: Path = CONF_DIR) -> list[str]:
    """Every conf/experiment/*.yaml, report block or not."""
    return sorted(p.stem for p in Path(conf_dir).glob("*.yaml"))


def reported_names(conf_dir: Path = CONF_DIR) -> list[str]:
    """The experiments that have a report: block (the ones the docs cover)."""
    return [n for n in config_names(conf_dir) if "report" in read_yaml(conf_dir / f"{n}.yaml")]


def load(name: str, conf_dir: Path = CONF_DIR) -> Experiment:
    """conf/experiment/<name>.yaml as an Experiment; an unknown name lists the allowed ones."""
    if name not in config_names(conf_dir):
        allowed = reported_names(conf_dir) or ["(no experiment has a report: block)"]
        raise ConfigError("experiment", name, allowed)
    return from_dict(name, read_yaml(Path(conf_dir) / f"{name}.yaml"))


def load_all(names: list[str] | None = None, conf_dir: Path = CONF_DIR) -> list[Experiment]:
    """The named experiments (checked before anything runs), or every reported one."""
    return [load(n, conf_dir) for n in (names or reported_names(conf_dir))]
