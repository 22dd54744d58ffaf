"""Lightning callbacks: TensorBoard diagnostics of what happens inside training."""

from neuralab.callbacks.diagnostics import Diagnostics

__all__ = ["Diagnostics"]
