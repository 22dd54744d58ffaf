"""The composed config as a tree at the start of a run.

Saved as config_tree.log in the run dir and, with `extras.print_config=true`, printed
to stdout with rich (off by default: ~140 lines before every run's first message), on
rank 0 only. Groups come first, in the order a reader follows a run (data -> model -> how it
trains -> where it writes), then any other group, then the top-level settings.
Values are resolved where they can be; one that cannot (a missing `???`, an
interpolation that fails) is shown as written, so printing never stops a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text
from rich.tree import Tree

CONFIG_TREE = "config_tree.log"
ORDER = (
    "data",
    "model",
    "module",
    "loss",
    "optimizer",
    "scheduler",
    "init",
    "trainer",
    "callbacks",
    "logger",
    "paths",
    "extras",
)


def config_tree(cfg: DictConfig) -> Tree:
    """One branch per group (its YAML inside), then one leaf per top-level setting."""
    tree = Tree("[bold]config[/bold]", guide_style="dim")
    values = _resolved(cfg)
    groups = [k for k, v in values.items() if isinstance(v, dict)]
    ordered = [k for k in ORDER if k in groups] + [k for k in groups if k not in ORDER]
    for key in ordered:
        text = OmegaConf.to_yaml(values[key]).rstrip() if values[key] else "{}"
        tree.add(f"[bold]{key}[/bold]").add(Syntax(text, "yaml", theme="ansi_dark", word_wrap=True))
    for key, value in values.items():
        if key not in groups:
            # YAML spelling (true, null), as Text: a value like [1, 2] is not rich markup
            tree.add(Text(OmegaConf.to_yaml({key: value}).strip()))
    return tree


def _resolved(node: DictConfig | ListConfig) -> Any:
    """The node as plain containers, resolving each value on its own (see module doc)."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    plain = {key: _resolved_value(node, key) for key in keys}
    return plain if isinstance(node, DictConfig) else list(plain.values())


def _resolved_value(node: DictConfig | ListConfig, key: Any) -> Any:
    if OmegaConf.is_missing(node, key):
        return "???"
    try:
        value = node[key]
    except Exception:  # an interpolation that does not resolve here: show it as written
        return OmegaConf.to_container(node, resolve=False)[key]
    if isinstance(value, DictConfig | ListConfig):
        return _resolved(value)
    return value


@rank_zero_only
def print_config(cfg: DictConfig, output_dir: Path | None = None, show: bool = True) -> None:
    """Print the tree (if `show`); with `output_dir`, write it there as plain text."""
    tree = config_tree(cfg)
    if show:
        Console().print(tree)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        with open(output_dir / CONFIG_TREE, "w", encoding="utf-8") as file:
            Console(file=file, width=120, no_color=True, force_terminal=False).print(tree)
