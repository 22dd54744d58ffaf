"""Which jobs of a sweep train together: packs of jobs whose configs differ only in
settings that a pack gives each member on its own.

Packable (each member keeps its own):
    seed (and with it the data split and order), init=, optimizer= and its settings
    (the class too: every member has an optimizer of its own), scheduler settings
    and class (not its presence, interval, monitor or whether it is a plateau
    schedule: Lightning steps all members' schedules at the same points),
    module.l1_penalty / l2_penalty, trainer.gradient_clip_val / _algorithm,
    loss.class_weights (weighted members together, `null` ones apart: a loss without
    weights has no weight buffer to stack), the early-stopping and checkpoint settings (each member
    has its own callbacks), and model.dropout (each member draws its own masks at its
    own rate, through the batched twins of its net's layers: pack/batched.py).
Everything else (the rest of the net, data, batch size, epochs, precision, devices, the
module class) must be equal: jobs that differ there go to different packs. A pack is
then checked once built (neuralab/pack/fit.py): nets of the same structure, a module
that declares `packable = True`, and for differing dropout rates a net whose layers all
have batched twins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Override keys (before any '.') whose values a member keeps to itself.
PACKABLE_GROUPS = ("seed", "init", "optimizer", "scheduler")
PACKABLE_KEYS = (
    "data.seed",
    "module.l1_penalty",
    "module.l2_penalty",
    "trainer.gradient_clip_val",
    "trainer.gradient_clip_algorithm",
    "loss.class_weights",
    "callbacks.early_stopping",
    "callbacks.model_checkpoint",
    "model.dropout",
)


def packable(override: str) -> bool:
    key, _, value = override.partition("=")
    key = key.lstrip("+~")
    if key == "loss.class_weights" and value.strip().lower() in ("null", "none", "~"):
        return False  # no weights: a loss of another structure than weighted members'
    if key.split(".")[0] in PACKABLE_GROUPS and not key.startswith(SCHEDULE_SHAPE):
        return True
    return any(key == k or key.startswith(f"{k}.") for k in PACKABLE_KEYS)


# What must be equal across a pack's schedules: Lightning steps them together.
SCHEDULE_SHAPE = ("scheduler.interval", "scheduler.monitor")


def schedule_shape(scheduler: Mapping | None) -> tuple:
    """(present, interval, monitor, plateau) of a job's scheduler config."""
    if not scheduler:
        return (False,)
    target = str(scheduler.get("_target_", ""))
    plateau = target.endswith("ReduceLROnPlateau")
    return (True, scheduler.get("interval", "epoch"), scheduler.get("monitor"), plateau)


def pack_key(overrides: Sequence[str], scheduler: Mapping | None) -> tuple:
    """Jobs with equal keys may train as one pack."""
    fixed = tuple(sorted(o for o in overrides if not packable(o)))
    return (fixed, schedule_shape(scheduler))


def group(keys: Sequence[tuple], max_members: int) -> list[list[int]]:
    """Job indices in packs: equal keys together, in job order, at most `max_members`
    to a pack (a bigger group becomes several packs)."""
    by_key: dict[tuple, list[int]] = {}
    for index, key in enumerate(keys):
        by_key.setdefault(key, []).append(index)
    packs = []
    for members in by_key.values():
        packs += [members[i : i + max_members] for i in range(0, len(members), max_members)]
    return sorted(packs, key=lambda pack: pack[0])
