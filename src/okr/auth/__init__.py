"""Login, sessions, API tokens and role guards (DESIGN 8)."""
