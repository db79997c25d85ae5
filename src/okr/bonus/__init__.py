"""Joint bonus (DESIGN 6): plan, pool, team pools, people lines and deal traces."""
