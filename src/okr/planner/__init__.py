"""The funnel planner (DESIGN 5): a revenue target back to the leads it needs."""
