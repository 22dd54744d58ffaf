"""Job dir names inside a sweep: `<job number>_<overrides>`.

TensorBoard names a run after its dir relative to --logdir, so with this name
the dashboard of a sweep lists `3_model.activation=tanh,optimizer=adam,seed=2`
instead of `3`. The job number stays in front: it keeps names unique when a
sweeper samples the same point twice (Optuna can), and keeps `ls` in launch
order for small sweeps. Overrides come from `hydra.job.override_dirname`
(sorted, noise keys excluded in conf/hydra/default.yaml).
"""

from __future__ import annotations

import hashlib
import re

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
