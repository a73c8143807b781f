"""Billing's own Prometheus metrics (exposed by /metrics with everything else)."""

from prometheus_client import Counter

LOW_BALANCE = Counter(
    "proxyllm_low_balance_events_total", "Prepaid accounts whose balance fell below their threshold", ["account_type"]
)
