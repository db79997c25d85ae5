"""okr: one revenue team for sales and marketing."""

__version__ = "0.1.0"
