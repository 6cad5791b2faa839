"""Conveyor: the whole machine-learning lifecycle from one spec file."""

__version__ = "0.1.0"

__all__ = ["__version__"]
