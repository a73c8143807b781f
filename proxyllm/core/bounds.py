"""What the database can hold, as limits on admin input: a value outside them is a 400 naming the field,
never a database error (a 500)."""

from __future__ import annotations

from decimal import Decimal

MAX_ID = 255  # user_id, team_id, key_alias, emails, aliases: String(255) columns
MAX_KEY = 512  # a raw key or its hash, as clients send it
MAX_LIST = 1000  # items in one admin list field (models, tags, keys to delete...)
MAX_INT32 = 2**31 - 1  # Integer columns (rpm_limit, tpm_limit, max_parallel_requests)
MAX_BIGINT = 2**63 - 1  # BigInteger ids (ledger entries)
MAX_PAGE = 1_000_000
MAX_MONEY = Decimal(1_000_000_000)  # dollars; money is stored as BIGINT nano-dollars (at most ~9.2e9)
