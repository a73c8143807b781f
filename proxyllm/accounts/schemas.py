"""Admin API request bodies. Field names follow LiteLLM's so existing admin scripts work.

Unknown fields are refused (400 naming the field) rather than silently ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proxyllm.accounts.durations import check_duration


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Limits(_Body):
    max_budget: Decimal | None = Field(default=None, ge=0)
    budget_duration: str | None = None
    models: list[str] | None = None
    tpm_limit: int | None = Field(default=None, ge=0)
    rpm_limit: int | None = Field(default=None, ge=0)
    max_parallel_requests: int | None = Field(default=None, ge=1)
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None

    @field_validator("budget_duration")
    @classmethod
    def _budget_duration(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, "budget_duration")

    @field_validator("max_budget", mode="before")
    @classmethod
    def _exact_money(cls, value: Any) -> Any:
        # JSON numbers arrive as float; their shortest repr is the decimal the client wrote
        return Decimal(repr(value)) if isinstance(value, float) else value


class KeyFields(_Limits):
    key_alias: str | None = Field(default=None, min_length=1, max_length=255)
    duration: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    tags: list[str] | None = None
    # Kept in the key's metadata, as LiteLLM does (see store.METADATA_FIELDS).
    model_rpm_limit: dict[str, Annotated[int, Field(ge=0)]] | None = None
    model_tpm_limit: dict[str, Annotated[int, Field(ge=0)]] | None = None
    allowed_cache_controls: list[str] | None = None

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, "duration")


class KeyGenerate(KeyFields):
    key: str | None = None


class KeyUpdate(KeyFields):
    key: str


class KeyRef(_Body):
    key: str


class KeyDelete(_Body):
    keys: list[str] | None = None
    key_aliases: list[str] | None = None


class UserFields(_Limits):
    user_email: str | None = None
    user_alias: str | None = None
    user_role: Literal["proxy_admin", "internal_user", "internal_user_viewer", "customer"] | None = None
    stripe_customer_id: str | None = None


class UserNew(UserFields):
    user_id: str | None = Field(default=None, min_length=1, max_length=255)
    team_id: str | None = None
    auto_create_key: bool = True


class UserUpdate(UserFields):
    user_id: str


class UserDelete(_Body):
    user_ids: list[str] = Field(min_length=1)


class Member(_Body):
    user_id: str = Field(min_length=1)
    role: Literal["admin", "user"] = "user"


class TeamFields(_Limits):
    team_alias: str | None = None
    stripe_customer_id: str | None = None


class TeamNew(TeamFields):
    team_id: str | None = Field(default=None, min_length=1, max_length=255)
    members_with_roles: list[Member] | None = None


class TeamUpdate(TeamFields):
    team_id: str


class TeamDelete(_Body):
    team_ids: list[str] = Field(min_length=1)


class MemberAdd(_Body):
    team_id: str
    member: Member | list[Member]


class MemberDelete(_Body):
    team_id: str
    user_id: str


def set_fields(body: BaseModel, *exclude: str) -> dict[str, Any]:
    """The fields the client actually sent (an update changes only those)."""
    return body.model_dump(exclude_unset=True, exclude=set(exclude))
