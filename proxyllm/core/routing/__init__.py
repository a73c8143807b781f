"""The parts of the router: policy, per-deployment stats, strategies, cooldowns, usage, wildcards, probes."""
