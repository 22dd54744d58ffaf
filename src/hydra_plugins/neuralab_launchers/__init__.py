"""neuralab's launchers for Hydra (docs/SWEEPS.md "Launchers"): the submitit launchers of
`hydra/launcher=submitit_local` and `hydra/launcher=slurm` (conf/hydra/launcher/), whose
requeued jobs resume (submitit_requeue.py).

Hydra finds this package by importing every module under the `hydra_plugins` namespace
package at start-up (src/hydra_plugins has no __init__.py, so installed plugins share the
namespace).
"""
