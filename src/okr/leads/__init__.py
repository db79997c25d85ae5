"""The lead queue: a rep's open MQLs against their SLA deadline, and the dispositions (DESIGN 5, 8)."""
