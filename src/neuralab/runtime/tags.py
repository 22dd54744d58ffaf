"""The names TensorBoard shows, and the metric names they come from.

TensorBoard groups tags by the text before their first `/` and sorts the groups
alphabetically (Time Series, Scalars). Logged as they are, `act_dead/`, `grad_norm/`,
`hp/` ... would come before `train/` and `val/`, which would be two groups apart. So
what neuralab writes to TensorBoard is grouped by what a user looks at first:

    curves/train/loss, curves/val/acc, curves/train/lr, ...   learning curves (first)
    diagnostics/grad_norm/layer00_..., diagnostics/pictures/...  what happens inside
    epochs                                                   epochs completed
    test/loss, test/acc                                      once, at the end

Everywhere else (callback_metrics, monitor.metric, results.json, CSV) a metric keeps
its own name (`val/loss`). `metric_name` turns a TensorBoard tag back into it, so
readers of event files (sweep plots, measures) speak the same names as the config.
"""

from __future__ import annotations

CURVES = "curves"  # train/ and val/ learning curves, one group
DIAGNOSTICS = "diagnostics"  # neuralab.diagnostics' scalars, histograms and pictures
EPOCHS_METRIC, EPOCHS_TAG = "train/epochs", "epochs"  # the one epoch counter
LIGHTNING_EPOCH = "epoch"  # Lightning adds it to every logged dict: a near-copy of ours
CURVE_STAGES = ("train", "val")


def tensorboard_tag(name: str) -> str:
    """`val/loss` -> `curves/val/loss`; `train/epochs` -> `epochs`; others unchanged."""
    if name == EPOCHS_METRIC:
        return EPOCHS_TAG
    stage, sep, rest = name.partition("/")
    if sep and rest and stage in CURVE_STAGES:
        return f"{CURVES}/{name}"
    return name


def diagnostics_tag(name: str) -> str:
    """`grad_norm/layer00_head` -> `diagnostics/grad_norm/layer00_head`."""
    return f"{DIAGNOSTICS}/{name}"


def metric_name(tag: str) -> str:
    """The inverse of `tensorboard_tag` and `diagnostics_tag` (older runs' tags pass as
    they are): what a reader of event files calls the value."""
    if tag == EPOCHS_TAG:
        return EPOCHS_METRIC
    for group in (CURVES, DIAGNOSTICS):
        if tag.startswith(f"{group}/"):
            return tag[len(group) + 1 :]
    return tag
