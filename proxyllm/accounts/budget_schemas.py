"""Request bodies of ``/budget/*`` and ``/end_user/*`` (``/customer/*``), with LiteLLM's field names.

Every field is bounded as its column is (``server/bounds.py``): a value outside is a 400 naming the
field. Fields LiteLLM accepts that proxyllm does not use (``object_permission``, ...) are accepted
and reported back in the ``x-litellm-ignored-fields`` response header.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from proxyllm.accounts.durations import check_duration
from proxyllm.core.bounds import MAX_ID, MAX_INT32, MAX_LIST, MAX_MONEY
from proxyllm.core.jsontypes import JSONObject, JSONValue


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID), AfterValidator(_no_nul)]
Text = Annotated[str, Field(max_length=MAX_ID), AfterValidator(_no_nul)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
BUDGET_FIELDS = (
    "max_budget",
    "soft_budget",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "model_max_budget",
    "budget_duration",
    "budget_reset_at",
)


def _exact(value: JSONValue) -> JSONValue:
    """JSON numbers arrive as float; their shortest repr is the decimal the client wrote."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)

    def ignored_fields(self) -> list[str]:
        return sorted(self.model_extra or ())

    def given(self) -> set[str]:
        return self.model_fields_set - set(self.model_extra or ())


class ModelBudget(BaseModel):
    """One entry of ``model_max_budget``: ``{"max_budget": 10, "budget_duration": "1d", ...}``."""

    model_config = ConfigDict(extra="forbid")

    max_budget: Money | None = None
    budget_duration: str | None = Field(default=None, max_length=16)
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None

    _money = field_validator("max_budget", mode="before")(_exact)

    @field_validator("budget_duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, "model_max_budget.budget_duration")

    def stored(self) -> JSONObject:
        """As JSON keeps it (and as LiteLLM answers it): money as a number."""
        values = self.model_dump(exclude_none=True)
        if self.max_budget is not None:
            values["max_budget"] = float(self.max_budget)
        return values


class BudgetFields(_Body):
    max_budget: Money | None = None
    soft_budget: Money | None = None
    max_parallel_requests: Count | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    model_max_budget: dict[Id, ModelBudget] | None = Field(default=None, max_length=MAX_LIST)
    budget_duration: str | None = Field(default=None, max_length=16)
    budget_reset_at: datetime | None = None

    _money = field_validator("max_budget", "soft_budget", mode="before")(_exact)

    @field_validator("budget_duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, "budget_duration")

    @field_validator("budget_reset_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if not 2000 <= value.year <= 9000:
            raise ValueError("must be a date between the years 2000 and 9000")
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def budget_values(self) -> dict[str, object]:
        """The budget fields the client set (null included), as column values."""
        values: dict[str, object] = {}
        for name in BUDGET_FIELDS:
            if name in self.model_fields_set:
                value = getattr(self, name)
                if name == "model_max_budget":
                    value = {k: v.stored() for k, v in (value or {}).items()}
                values[name] = value
        return values


class BudgetNew(BudgetFields):
    budget_id: Id | None = None


class BudgetUpdate(BudgetFields):
    budget_id: Id


class BudgetRequest(_Body):
    budgets: list[Id] = Field(min_length=1, max_length=MAX_LIST)


class BudgetDelete(_Body):
    id: Id


class EndUserFields(BudgetFields):
    alias: Text | None = None
    blocked: bool | None = None
    budget_id: Id | None = None
    allowed_model_region: Literal["eu", "us"] | None = None
    default_model: Id | None = None
    metadata: JSONObject | None = None
    spend: Money | None = None
    stripe_customer_id: Id | None = None

    _spend = field_validator("spend", mode="before")(_exact)


class EndUserNew(EndUserFields):
    user_id: Id


class EndUserUpdate(EndUserFields):
    user_id: Id


class EndUserIds(_Body):
    user_ids: list[Id] = Field(min_length=1, max_length=MAX_LIST)
