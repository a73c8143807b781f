"""Admin API request bodies. Field names follow LiteLLM's so existing admin scripts work.

Fields proxyllm does not know are accepted, as LiteLLM's many optional fields must be, and ignored:
the response names them in ``x-litellm-ignored-fields`` (admin/shapes.py). The fields proxyllm knows
are checked strictly (types, lengths, ranges) and a bad value is a 400 naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from proxyllm.accounts.durations import check_duration
from proxyllm.core.bounds import MAX_ID, MAX_INT32, MAX_KEY, MAX_LIST, MAX_MONEY
from proxyllm.core.jsontypes import JSONObject, JSONValue

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Text = Annotated[str, Field(max_length=MAX_ID)]
RawKey = Annotated[str, Field(min_length=1, max_length=MAX_KEY)]
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


def _not_null(value: JSONValue) -> JSONValue:
    """Fields whose column cannot be empty may be left out, but not sent as null."""
    if value is None:
        raise ValueError("may be left out but not null")
    return value


class _Limits(_Body):
    max_budget: Decimal | None = Field(default=None, ge=0, le=MAX_MONEY, allow_inf_nan=False)
    budget_duration: str | None = Field(default=None, max_length=16)
    models: list[Id] | None = Field(default=None, max_length=MAX_LIST)
    tpm_limit: int | None = Field(default=None, ge=0, le=MAX_INT32)
    rpm_limit: int | None = Field(default=None, ge=0, le=MAX_INT32)
    max_parallel_requests: int | None = Field(default=None, ge=0, le=MAX_INT32)  # 0: no request at all
    metadata: JSONObject | None = None
    blocked: bool | None = None

    _blocked_not_null = field_validator("blocked")(_not_null)

    @field_validator("budget_duration")
    @classmethod
    def _budget_duration(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, "budget_duration")

    @field_validator("max_budget", mode="before")
    @classmethod
    def _exact_money(cls, value: JSONValue) -> JSONValue:
        # JSON numbers arrive as float; their shortest repr is the decimal the client wrote
        return Decimal(repr(value)) if isinstance(value, float) else value


class KeyFields(_Limits):
    key_alias: str | None = Field(default=None, min_length=1, max_length=MAX_ID)
    duration: str | None = Field(default=None, max_length=32)
    user_id: Id | None = None
    team_id: Id | None = None
    tags: list[Text] | None = Field(default=None, max_length=MAX_LIST)
    # Kept in the key's metadata, as LiteLLM does (see store.METADATA_FIELDS).
    model_rpm_limit: dict[str, Count] | None = None
    model_tpm_limit: dict[str, Count] | None = None
    allowed_cache_controls: list[Text] | None = Field(default=None, max_length=MAX_LIST)
    aliases: dict[Id, Id] | None = Field(default=None, max_length=MAX_LIST)  # model name -> model group

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, "duration")


class KeyGenerate(KeyFields):
    key: RawKey | None = None


class KeyUpdate(KeyFields):
    key: RawKey


class KeyRef(_Body):
    key: RawKey


class KeyDelete(_Body):
    keys: list[RawKey] | None = Field(default=None, max_length=MAX_LIST)
    key_aliases: list[Id] | None = Field(default=None, max_length=MAX_LIST)


class UserFields(_Limits):
    user_email: Text | None = None
    user_alias: Text | None = None
    user_role: (
        Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer", "customer"] | None
    ) = None
    stripe_customer_id: Text | None = None

    _role_not_null = field_validator("user_role")(_not_null)


class UserNew(UserFields):
    user_id: Id | None = None
    team_id: Id | None = None
    teams: list[Id] | None = Field(default=None, max_length=MAX_LIST)  # joined as role "user"
    auto_create_key: bool = True
    duration: str | None = Field(default=None, max_length=32)  # of the auto-created key

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, "duration")


class UserUpdate(UserFields):
    user_id: Id
    spend: Decimal | None = Field(default=None, ge=0, le=MAX_MONEY, allow_inf_nan=False)

    _spend_not_null = field_validator("spend")(_not_null)

    @field_validator("spend", mode="before")
    @classmethod
    def _exact_spend(cls, value: JSONValue) -> JSONValue:
        return Decimal(repr(value)) if isinstance(value, float) else value


class UserDelete(_Body):
    user_ids: list[Id] = Field(min_length=1, max_length=MAX_LIST)


class MemberRef(_Body):
    """A user by ``user_id`` or ``user_email`` (LiteLLM accepts either)."""

    user_id: Id | None = None
    user_email: Id | None = None

    @model_validator(mode="after")
    def _one_of(self) -> MemberRef:
        if self.user_id is None and self.user_email is None:
            raise ValueError("give 'user_id' or 'user_email'")
        return self


class Member(MemberRef):
    role: Literal["admin", "user"] = "user"


class TeamFields(_Limits):
    team_alias: Text | None = None
    stripe_customer_id: Text | None = None
    # Kept in the team's metadata (see TEAM_METADATA_FIELDS); model_aliases apply to the team's keys.
    model_aliases: dict[Id, Id] | None = Field(default=None, max_length=MAX_LIST)
    tags: list[Text] | None = Field(default=None, max_length=MAX_LIST)
    team_member_permissions: list[Text] | None = Field(default=None, max_length=MAX_LIST)
    organization_id: Text | None = None


class TeamNew(TeamFields):
    team_id: Id | None = None
    members_with_roles: list[Member] | None = Field(default=None, max_length=MAX_LIST)


class TeamUpdate(TeamFields):
    team_id: Id


class TeamDelete(_Body):
    team_ids: list[Id] = Field(min_length=1, max_length=MAX_LIST)


class MemberAdd(_Body):
    team_id: Id
    member: Member | list[Member]


class MemberDelete(MemberRef):
    team_id: Id


class MemberUpdate(MemberRef):
    team_id: Id
    role: Literal["admin", "user"] | None = None


def set_fields(body: BaseModel, *exclude: str) -> dict[str, object]:
    """The known fields the client actually sent (an update changes only those); ignored ones are not."""
    extra = set(body.model_extra or ())
    return {k: v for k, v in body.model_dump(exclude_unset=True, exclude=set(exclude)).items() if k not in extra}
