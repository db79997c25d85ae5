"""The dashboard: the quarter's KPIs at a glance, each figure one click from its records."""
