"""Lead SLA (DESIGN 5): the policy, the lead queue and the SLA board."""
