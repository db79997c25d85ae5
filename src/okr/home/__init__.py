"""The personal ("me") page and the team pages (issue 4, item 5)."""
