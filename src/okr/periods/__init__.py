"""Fiscal periods: the quarters goals, KPIs and bonus runs belong to."""
