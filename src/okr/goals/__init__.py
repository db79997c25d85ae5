"""Goals (DESIGN 4): objectives, key results, check-ins, scores, pace and forecasts."""
