"""Who may see what: roles, their permissions, and the scope every data query takes.

A scope limits the grid subtree (a town leader sees that town) and, for department users,
the department cases were dispatched to. Data functions take the scope and apply it in
SQL, so no callback or endpoint can return anything outside it, whatever its inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PERMISSIONS = {
    "admin": frozenset({"view", "wall", "review", "weekly", "api", "export", "unmask", "personal_data", "admin", "audit", "ops", "command"}),
    "operator": frozenset({"view", "wall", "review", "weekly", "api", "export", "unmask", "ops", "command"}),
    "leader": frozenset({"view", "wall", "review", "weekly", "api", "export"}),
    "dept": frozenset({"view", "review", "weekly", "api", "export", "unmask"}),
    "wall": frozenset({"wall"}),
}

# Screens by path and the permission each needs.
PAGE_PERMISSIONS = {
    "/": "view",
    "/wall": "wall",
    "/review": "review",
    "/weekly": "weekly",
    "/ops": "ops",
    "/admin": "admin",
    "/admin/audit": "audit",
}


class Forbidden(Exception):
    """The caller's role or scope does not allow this; the message says what was refused."""


@dataclass(frozen=True)
class Scope:
    """What a caller's queries are limited to; ``None`` parts limit nothing."""

    area_path: str | None = None  # materialised path of the subtree, e.g. "/320506/320506003000/"
    area_code: str | None = None
    dept: str | None = None
    personal_data: bool = False  # may see reporters and contacts unmasked
    dept_before_dispatch: bool = False  # a department also sees its categories' cases not yet dispatched

    def covers(self, path: str) -> bool:
        """Whether the grid at ``path`` lies inside the scope."""
        return self.area_path is None or path.startswith(self.area_path)

    def sees_department_case(self, dept: str | None, dispatched_at: datetime | str | None) -> bool:
        """Whether a case of department ``dept`` (dispatched at ``dispatched_at``, or never) is in
        the scope's department part: the cases dispatched to it, or also those of its categories
        not yet dispatched when ``dept_before_dispatch``."""
        return self.dept is None or (dept == self.dept and (dispatched_at is not None or self.dept_before_dispatch))

    def key(self) -> str:
        """A stable description for cache keys (numbers differ between scopes)."""
        return f"{self.area_code or '*'}|{self.dept or '*'}{'+' if self.dept_before_dispatch else ''}"


EVERYTHING = Scope(personal_data=True)


@dataclass(frozen=True)
class Principal:
    """The caller: a signed-in user, an API token's user, or the local user when auth is off."""

    name: str
    role: str
    scope: Scope
    user_id: int | None = None
    token_id: int | None = None

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(f"role {self.role} may not {permission}")


def effective_path(area_path: str, scope: Scope) -> str | None:
    """The part of the subtree at ``area_path`` the scope allows: the deeper of the two when
    one contains the other, None when they do not meet."""
    if scope.area_path is None or area_path.startswith(scope.area_path):
        return area_path
    if scope.area_path.startswith(area_path):
        return scope.area_path
    return None
