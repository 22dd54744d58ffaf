"""Data: sources by name, one in-memory DataModule, and the batch iterable."""

from neuralab.data.module import ArrayDataModule

__all__ = ["ArrayDataModule"]
