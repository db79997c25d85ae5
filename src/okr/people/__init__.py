"""People and teams: who works here, in which team, with which role."""
