"""The KPI library (DESIGN 4): definitions, and the figures computed from pipeline data."""
