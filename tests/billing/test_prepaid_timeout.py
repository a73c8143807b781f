"""PROXYLLM_PREPAID_TIMEOUT_SECONDS: how long a prepaid reservation may wait on the database."""

from __future__ import annotations

import pytest

from proxyllm.billing.hooks import RESERVE_TIMEOUT, TIMEOUT_ENV, reserve_timeout


def test_default_and_a_chosen_bound() -> None:
    assert reserve_timeout({}) == RESERVE_TIMEOUT == 2.0
    assert reserve_timeout({TIMEOUT_ENV: "0.5"}) == 0.5
    assert reserve_timeout({TIMEOUT_ENV: "60"}) == 60


@pytest.mark.parametrize("raw", ["0", "-1", "61", "nan", "inf", "-inf", "two", "1e309"])
def test_values_out_of_bounds_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=TIMEOUT_ENV):
        reserve_timeout({TIMEOUT_ENV: raw})
