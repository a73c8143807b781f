"""Virtual keys, users and teams: their storage, cached lookups, budgets and spend."""
