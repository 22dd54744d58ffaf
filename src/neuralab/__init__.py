"""neuralab: Lightning + Hydra template for the fundamentals of neural networks."""

__version__ = "0.1.0"
