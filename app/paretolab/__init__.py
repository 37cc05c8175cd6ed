"""ParetoLab: make neural networks smaller and faster, and see the trade-offs."""

__version__ = "0.1.0"
