"""Attribution (DESIGN 3): which campaigns and which people earned each opportunity."""
