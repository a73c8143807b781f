"""Rate and concurrency limits (per key, user, team, model on a key, whole proxy) and shared budgets."""
