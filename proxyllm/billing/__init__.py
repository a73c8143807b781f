"""Stripe billing: prepaid credits held in the proxy's own ledger, with Stripe collecting the money."""
