"""Who may call which admin route, and on what: the one permission table (role x route x ownership).

Every admin route depends on ``server.deps.Admin``, which resolves the caller's role (``actor_of``)
and looks the route up here (``grant``). A role either may not call the route (403), may act on
anything (``Own.ANY``), or only on objects it owns by one of the listed relations; the service that
loads the object checks that relation with ``Actor.require``. Nothing else decides access.

Roles are LiteLLM's: the master key and keys of ``proxy_admin`` users administer; ``proxy_admin_viewer``
reads everything and changes nothing; ``internal_user`` manages its own keys; ``internal_user_viewer``
(and ``customer``) reads its own; a key without a user reaches only itself and its team. Team roles
(``admin`` / ``user``) add the ownership relations ``TEAM_ADMIN`` and ``TEAM_MEMBER``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError


class Role(StrEnum):
    PROXY_ADMIN = "proxy_admin"
    PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
    INTERNAL_USER = "internal_user"
    INTERNAL_USER_VIEWER = "internal_user_viewer"
    KEY = "key"  # a virtual key that belongs to no user


# user_role values stored on users -> the role their keys act with
USER_ROLES: Mapping[str, Role] = {
    "proxy_admin": Role.PROXY_ADMIN,
    "proxy_admin_viewer": Role.PROXY_ADMIN_VIEWER,
    "internal_user": Role.INTERNAL_USER,
    "internal_user_viewer": Role.INTERNAL_USER_VIEWER,
    "customer": Role.INTERNAL_USER_VIEWER,
}


class Own(StrEnum):
    ANY = "any"  # every object
    SELF = "self"  # the caller's own key, its user, that user's keys
    TEAM_ADMIN = "team_admin"  # objects of a team whose admin the caller's user is
    TEAM_MEMBER = "team_member"  # a team the caller's key or user belongs to


Rule = Mapping[Role, frozenset[Own]]
ANY = frozenset({Own.ANY})
SELF = frozenset({Own.SELF})
SELF_OR_TEAM_ADMIN = frozenset({Own.SELF, Own.TEAM_ADMIN})
TEAM_ADMIN = frozenset({Own.TEAM_ADMIN})
MEMBER = frozenset({Own.TEAM_MEMBER, Own.TEAM_ADMIN})

ADMIN_WRITE: Rule = {Role.PROXY_ADMIN: ANY}
ADMIN_READ: Rule = {Role.PROXY_ADMIN: ANY, Role.PROXY_ADMIN_VIEWER: ANY}
EVERY_KEY_READ: Rule = {
    **ADMIN_READ,
    Role.INTERNAL_USER: SELF,
    Role.INTERNAL_USER_VIEWER: SELF,
    Role.KEY: SELF,
}  # the route shows the caller only its own (e.g. the models its key may use)
OWN_KEYS_WRITE: Rule = {Role.PROXY_ADMIN: ANY, Role.INTERNAL_USER: SELF_OR_TEAM_ADMIN}
TEAM_ADMIN_WRITE: Rule = {Role.PROXY_ADMIN: ANY, Role.INTERNAL_USER: TEAM_ADMIN}

# (method, path) -> rule. A path ending in "/*" covers everything under it. Routes not listed are
# read-only for admins (GET: proxy admins and viewers; anything else: proxy admins).
TABLE: Mapping[tuple[str, str], Rule] = {
    ("POST", "/key/generate"): OWN_KEYS_WRITE,
    ("POST", "/key/update"): OWN_KEYS_WRITE,
    ("POST", "/key/delete"): OWN_KEYS_WRITE,
    ("POST", "/key/regenerate"): OWN_KEYS_WRITE,
    ("POST", "/key/{key}/regenerate"): OWN_KEYS_WRITE,
    ("POST", "/key/block"): ADMIN_WRITE,
    ("POST", "/key/unblock"): ADMIN_WRITE,
    ("GET", "/key/info"): {
        **ADMIN_READ,
        Role.INTERNAL_USER: SELF_OR_TEAM_ADMIN,
        Role.INTERNAL_USER_VIEWER: SELF,
        Role.KEY: SELF,
    },
    ("GET", "/key/list"): ADMIN_READ,
    ("POST", "/user/new"): ADMIN_WRITE,
    ("POST", "/user/update"): ADMIN_WRITE,
    ("POST", "/user/delete"): ADMIN_WRITE,
    ("GET", "/user/info"): {**ADMIN_READ, Role.INTERNAL_USER: SELF, Role.INTERNAL_USER_VIEWER: SELF},
    ("GET", "/user/list"): ADMIN_READ,
    ("POST", "/team/new"): ADMIN_WRITE,
    ("POST", "/team/update"): TEAM_ADMIN_WRITE,
    ("POST", "/team/delete"): ADMIN_WRITE,
    ("POST", "/team/member_add"): TEAM_ADMIN_WRITE,
    ("POST", "/team/member_update"): TEAM_ADMIN_WRITE,
    ("POST", "/team/member_delete"): TEAM_ADMIN_WRITE,
    ("GET", "/team/info"): {
        **ADMIN_READ,
        Role.INTERNAL_USER: MEMBER,
        Role.INTERNAL_USER_VIEWER: MEMBER,
        Role.KEY: MEMBER,
    },
    ("GET", "/team/list"): ADMIN_READ,
    # Model information: any key, shown only the models it may use.
    ("GET", "/model/info"): EVERY_KEY_READ,
    ("GET", "/v1/model/info"): EVERY_KEY_READ,
    ("GET", "/v2/model/info"): EVERY_KEY_READ,
    ("GET", "/model_group/info"): EVERY_KEY_READ,
    # Administration only, whatever the route under these paths.
    ("GET", "/budget/*"): ADMIN_READ,
    ("POST", "/budget/*"): ADMIN_WRITE,
    ("GET", "/end_user/*"): ADMIN_READ,
    ("POST", "/end_user/*"): ADMIN_WRITE,
    ("GET", "/customer/*"): ADMIN_READ,
    ("POST", "/customer/*"): ADMIN_WRITE,
    ("GET", "/routes"): ADMIN_READ,
    ("GET", "/global/spend"): ADMIN_READ,
    ("GET", "/global/spend/*"): ADMIN_READ,
    ("GET", "/spend/*"): ADMIN_READ,
    ("POST", "/spend/*"): ADMIN_WRITE,
    ("GET", "/audit/logs"): ADMIN_READ,
}


def rule_for(method: str, path: str) -> Rule:
    """The rule of a route (its path template): exact, else the longest "/*" prefix, else the default."""
    exact = TABLE.get((method, path))
    if exact is not None:
        return exact
    prefix = path
    while "/" in prefix.strip("/"):
        prefix = prefix.rsplit("/", 1)[0]
        found = TABLE.get((method, prefix + "/*"))
        if found is not None:
            return found
    return ADMIN_READ if method in ("GET", "HEAD") else ADMIN_WRITE


@dataclass(slots=True, frozen=True)
class Actor:
    """The caller of an admin route: its principal and role, and (for a key) its user's teams."""

    principal: Principal
    role: Role
    user_id: str | None = None
    key_hash: str | None = None
    key_team: str | None = None  # the team of the calling key
    teams: Mapping[str, str] = field(default_factory=dict)  # team_id -> the user's role in it
    granted: frozenset[Own] = ANY
    route: str = ""

    @property
    def sees_everything(self) -> bool:
        return Own.ANY in self.granted

    @property
    def is_admin(self) -> bool:
        return self.role is Role.PROXY_ADMIN

    def admin_of(self, team_id: str | None) -> bool:
        return team_id is not None and self.teams.get(team_id) == "admin"

    def member_of(self, team_id: str | None) -> bool:
        return team_id is not None and (team_id == self.key_team or team_id in self.teams)

    def owns_key(self, token: str | None, user_id: str | None, team_id: str | None) -> bool:
        if self.sees_everything:
            return True
        if Own.SELF in self.granted:
            if token is not None and token == self.key_hash:
                return True
            if self.user_id is not None and user_id == self.user_id and (team_id is None or self.member_of(team_id)):
                return True
        return Own.TEAM_ADMIN in self.granted and self.admin_of(team_id)

    def owns_user(self, user_id: str) -> bool:
        return self.sees_everything or (Own.SELF in self.granted and user_id == self.user_id)

    def owns_team(self, team_id: str) -> bool:
        if self.sees_everything:
            return True
        if Own.TEAM_ADMIN in self.granted and self.admin_of(team_id):
            return True
        return Own.TEAM_MEMBER in self.granted and self.member_of(team_id)

    def refuse(self, what: str) -> ProxyError:
        return ProxyError(
            ErrorKind.PERMISSION,
            f"{self.describe()} may not call {self.route} on {what}: {self.allowance()}",
            code="not_allowed",
        )

    def require(self, allowed: bool, what: str) -> None:
        if not allowed:
            raise self.refuse(what)

    def describe(self) -> str:
        if self.principal.kind != "key":
            return f"the {self.principal.kind} key"
        if self.user_id is not None:
            return f"a key of user '{self.user_id}' (role {self.role.value})"
        return "a key that belongs to no user"

    def allowance(self) -> str:
        parts = []
        if Own.SELF in self.granted:
            parts.append("its own key, user and that user's keys")
        if Own.TEAM_ADMIN in self.granted:
            parts.append("objects of teams it administers")
        if Own.TEAM_MEMBER in self.granted:
            parts.append("teams it belongs to")
        return "it may act only on " + " or ".join(parts) if parts else "it may not call this route"


def grant(actor: Actor, method: str, route: str) -> Actor:
    """The actor with what this route grants its role; 403 when the route is not for that role."""
    rule = rule_for(method, route)
    granted = rule.get(actor.role)
    label = f"{method} {route}"
    if not granted:
        needed = "a proxy admin" if rule.keys() <= {Role.PROXY_ADMIN} else "an admin or the object's owner"
        raise ProxyError(
            ErrorKind.PERMISSION,
            f"{actor.describe()} may not call {label}: it needs {needed}"
            + ("; proxy_admin_viewer keys only read" if actor.role is Role.PROXY_ADMIN_VIEWER else ""),
            code="not_allowed",
        )
    return Actor(
        principal=actor.principal,
        role=actor.role,
        user_id=actor.user_id,
        key_hash=actor.key_hash,
        key_team=actor.key_team,
        teams=actor.teams,
        granted=granted,
        route=label,
    )
