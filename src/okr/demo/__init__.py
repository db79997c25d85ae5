"""Deterministic demo data for a realistic organisation."""
