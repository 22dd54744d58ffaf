"""A refused command writes nothing: what this invocation added to the logs is taken back.

Hydra makes the run dir (and writes .hydra/, opens <task>.log) before neuralab's task
runs, and a sweep's dir (multirun.yaml) before it composes the sweep's jobs. RunDirGuard,
a Hydra callback (conf/hydra/default.yaml), runs before either: it refuses a dir that
cannot be made or written, or that another live process trains in (runtime/run_lock.py),
with one line and exit 2 and nothing created, and notes what is there already. A
refusal later on removes what this invocation created and nothing else: a resumed run
dir keeps every file an earlier session wrote. A sweep that fails before
its first job (an unknown option among the swept ones) leaves no sweep dir behind.

Light on purpose (no torch): it runs before anything heavy is imported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from neuralab.errors import ConfigError
from neuralab.runtime.run_lock import RunDirBusy, check_free

EXIT_BAD_INPUT = 2
SWEEP_FILES = frozenset({"multirun.yaml"})  # what a sweep dir holds before its first job


@dataclass
class Noted:
    path: Path  # the run or sweep dir, absolute
    existed: frozenset[str] | None  # its entries before this invocation; None: no dir yet
    first_new: Path | None  # the topmost dir this invocation creates (None: none)


_noted: dict[str, Noted] = {}  # "run" / "sweep" -> what was there when this command began


class RunDirGuard(Callback):
    """Hydra callback: check and note the run (sweep) dir before Hydra creates it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _guard("run", config)
        _check_early(config, str(kwargs.get("config_name")))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _guard("sweep", config)


def _guard(kind: str, config: DictConfig) -> None:
    try:
        path = Path(str(OmegaConf.select(config, f"hydra.{kind}.dir"))).absolute()
        check_writable(path, *_setting(kind, config, path))
        if kind == "run":  # before Hydra rewrites its .hydra/ files
            check_free(path)
    except ConfigError as err:
        print_refusal(err)
        sys.exit(EXIT_BAD_INPUT)
    _noted[kind] = note(path)


def _check_early(config: DictConfig, config_name: str) -> None:
    """A single run's config-only checks, before its task imports torch and lightning
    (seconds): a typo is answered at once. The task checks again, with everything at
    hand (and a sweep's jobs only there: the sweep's own config is not theirs)."""
    from neuralab.checks import check_config, check_eval_overrides, check_types
    from neuralab.runtime.config import defaults_for

    overrides = [str(o) for o in config.hydra.overrides.task]
    try:
        defaults = defaults_for(config, config.hydra)
        if config_name == "eval":
            check_eval_overrides(overrides)
            check_types(config, defaults, overrides)
        else:
            check_config(config, defaults, overrides, multirun=False)
    except ConfigError as err:
        print_refusal(err)
        sys.exit(EXIT_BAD_INPUT)
    except Exception:  # e.g. an interpolation that resolves only inside the job
        return


def _setting(kind: str, config: DictConfig, path: Path) -> tuple[str, str]:
    """Name the setting the user most likely gave: paths.log_dir, unless the dir is elsewhere."""
    log_dir = OmegaConf.select(config, "paths.log_dir", default=None)
    if log_dir is not None and Path(str(log_dir)).absolute() in path.parents:
        return "paths.log_dir", str(log_dir)
    return f"hydra.{kind}.dir", str(path)


def check_writable(path: Path, setting: str, value: str) -> None:
    """`path` is a dir this user can write, or can be created as one."""
    probe = path
    while not _exists(probe):
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(setting, value, f"a directory that can be created ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(setting, value, f"a directory this user can write ({probe} is not)")


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path == path.parent
    except OSError:  # unreadable on the way: the access check below says so
        return True


def note(path: Path) -> Noted:
    if path.is_dir():
        return Noted(path, frozenset(p.name for p in path.iterdir()), None)
    first_new = path
    while not first_new.parent.exists():
        first_new = first_new.parent
    return Noted(path, None, first_new)


def print_refusal(err: ConfigError) -> None:
    """The one line a refusal prints (stderr): setting, value, what is allowed."""
    print(f"neuralab: error: {err}", file=sys.stderr)


def refuse(err: ConfigError) -> NoReturn:
    """A single run refused: one line, this invocation's files removed, exit 2."""
    print_refusal(err)
    if not isinstance(err, RunDirBusy):
        undo("run")
    sys.exit(EXIT_BAD_INPUT)


def undo(kind: str) -> None:
    """Remove what this invocation created in (or as) its run/sweep dir."""
    noted = _noted.pop(kind, None)
    if noted is None or not noted.path.is_dir():
        return
    if noted.existed is None:
        shutil.rmtree(noted.path, ignore_errors=True)
        _prune_empty(noted.path.parent, noted.first_new)
        return
    for entry in noted.path.iterdir():
        if entry.name not in noted.existed:
            _remove(entry)


def _prune_empty(directory: Path, first_new: Path | None) -> None:
    """Remove the now empty parents this invocation created (never a non-empty one:
    another run may have started there meanwhile)."""
    while first_new is not None and (directory == first_new or first_new in directory.parents):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


@contextlib.contextmanager
def no_orphans() -> Iterator[None]:
    """Around a whole command: a sweep that ends before its first job leaves no sweep dir."""
    _noted.clear()  # in-process callers (tests) run several commands
    try:
        yield
    finally:
        noted = _noted.pop("sweep", None)
        if noted is not None and noted.existed is None and noted.path.is_dir():
            if {p.name for p in noted.path.iterdir()} <= SWEEP_FILES:
                _noted["sweep"] = noted
                undo("sweep")
        _noted.clear()


def guarded(main: Callable[[], Any]) -> Callable[[], None]:
    """An entry point (a hydra.main function) run inside `no_orphans`."""

    def run() -> None:
        with no_orphans():
            main()

    run.__name__, run.__doc__ = main.__name__, main.__doc__
    return run
