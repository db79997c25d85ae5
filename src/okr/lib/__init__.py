"""Shared helpers: money, periods, clock, CSV."""
