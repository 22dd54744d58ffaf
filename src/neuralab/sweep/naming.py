"""Run dir names: `<job number>_<varying overrides>` in a sweep, `<time>_<pid>_<overrides>`
for a single run (as `key-value+key-value`: a path Hydra's command line reads as it is).

TensorBoard names a run after its dir relative to --logdir, so with these names
the dashboard of a sweep lists `3_model.activation=tanh,optimizer=adam` instead of `3`:
only the overrides that vary across the sweep (`varying_dirname`), so the part that
differs is not pushed past the sidebar's truncation by what every job shares (that
is in results.md's header). The job number stays in front: it keeps names unique when
a sweeper samples the same point twice (Optuna can), and keeps `ls` in launch order for
small sweeps. Overrides are sorted, with the noise keys of conf/hydra/default.yaml
left out; a resumed sweep finds the same names (its multirun.yaml varies the same keys).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# Characters kept as they are: readable, legal on Linux, macOS and Windows, and
# harmless in a shell word. Everything else (`/` of paths, spaces, quotes, `~`
# of deletions, `:`) becomes `_`.
UNSAFE = re.compile(r"[^A-Za-z0-9._,=+\-\[\]]")
# Filesystems allow 255 bytes per name; readability ends well before that.
MAX_OVERRIDES_CHARS = 120
HASH_CHARS = 8


def job_dirname(num: int | str, overrides: str | None) -> str:
    """`<num>_<overrides>` made filesystem-safe and short; `<num>` alone without overrides."""
    text = UNSAFE.sub("_", overrides or "")
    if len(text) > MAX_OVERRIDES_CHARS:
        # Cut, and tell different configurations apart by a hash of the full text.
        digest = hashlib.sha1((overrides or "").encode()).hexdigest()[:HASH_CHARS]
        text = f"{text[: MAX_OVERRIDES_CHARS - HASH_CHARS - 1]}-{digest}"
    return f"{num}_{text}" if text else str(num)


# A single run's dir is typed back on command lines (ckpt_path=<dir>/..., run_dir=<dir>),
# where Hydra reads `=` and `,` as syntax: its overrides are written `key-value+key-value`.
RUN_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")


def run_dirname(prefix: str, *, _root_: DictConfig) -> str:
    """`<prefix>_<overrides>` for a single run: `2026-12-06_20-25-01_4242_init-he_normal+
    optimizer-sgd` (the noise keys of override_dirname left out)."""
    hydra = _root_.hydra
    exclude = set(hydra.job.config.override_dirname.get("exclude_keys") or [])
    items = sorted(str(o) for o in hydra.overrides.task if _key(str(o)) not in exclude)
    text = "+".join(
        f"{RUN_UNSAFE.sub('_', _key(o))}-{RUN_UNSAFE.sub('_', o.partition('=')[2])}" for o in items
    )
    if len(text) > MAX_OVERRIDES_CHARS:
        digest = hashlib.sha1(text.encode()).hexdigest()[:HASH_CHARS]
        text = f"{text[: MAX_OVERRIDES_CHARS - HASH_CHARS - 1]}-{digest}"
    return f"{prefix}_{text}" if text else str(prefix)


def varying_dirname(*, _root_: DictConfig) -> str:
    """A sweep job's overrides that vary across the sweep, as `k=v,k=v` (sorted, the
    excluded keys of override_dirname left out): what tells its TensorBoard run apart.
    The rest is the same for every job (results.md lists it). A sweep whose
    multirun.yaml cannot be read keeps every override, as override_dirname does."""
    hydra = _root_.hydra
    exclude = set(hydra.job.config.override_dirname.get("exclude_keys") or [])
    varying = sweep_keys(str(hydra.sweep.dir))
    kept = [
        o
        for o in map(str, hydra.overrides.task)
        if _key(o) not in exclude and (varying is None or _key(o) in varying)
    ]
    return ",".join(sorted(kept))


def sweep_keys(sweep_dir: str) -> frozenset[str] | None:
    """The keys a sweep varies: its command's sweep overrides (`a=1,2`, `range(..)`) and
    its sweeper's params (hydra.sweeper.params: experiments, Optuna), from multirun.yaml,
    which the sweeper writes before the first job."""
    path = Path(sweep_dir) / "multirun.yaml"
    try:
        return _sweep_keys(path, path.stat().st_mtime_ns)
    except (OSError, ValueError, TypeError, AttributeError):
        return None


@functools.lru_cache(maxsize=8)
def _sweep_keys(path: Path, _stamp: int) -> frozenset[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    saved = OmegaConf.load(path).hydra
    lines = [str(o) for o in saved.overrides.task]
    params = saved.sweeper.get("params") or {}
    lines += [f"{key}={value}" for key, value in params.items() if value is not None]
    parser = OverridesParser.create()
    return frozenset(
        _key(line) for line in lines if parser.parse_override(line).is_sweep_override()
    )


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")
