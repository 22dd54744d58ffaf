"""Lightning callbacks: TensorBoard diagnostics of what happens inside training."""

from neuralab.diagnostics.callback import Diagnostics

__all__ = ["Diagnostics"]
