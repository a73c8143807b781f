"""Operator controls: models managed at run time (stored in the database, secrets encrypted), the IP
allowlist, and the audit log of admin actions."""
