"""neuralab's Optuna sweeper for Hydra (`hydra/sweeper=optuna`, docs/SWEEPS.md).

Hydra finds it by importing every module under the `hydra_plugins` namespace package at
start-up (src/hydra_plugins has no __init__.py, so installed plugins share the namespace).
"""
