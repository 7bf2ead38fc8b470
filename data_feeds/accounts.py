"""Users, API tokens and the audit log in the grid database.

The audit log is append-only: this module only inserts into it, and the database refuses
UPDATE and DELETE on it (triggers created by ``init_db``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from data_feeds import db, schema
from data_feeds.credentials import check_password_rules, hash_password, new_token, token_digest, verify_password

ROLES = ("admin", "operator", "leader", "dept", "wall")
ROLE_NAMES = {
    "admin": ("系统管理员", "Administrator"),
    "operator": ("指挥中心值班员", "Command-centre operator"),
    "leader": ("领导", "Leader"),
    "dept": ("部门用户", "Department user"),
    "wall": ("大屏", "Video wall"),
}


class AccountError(ValueError):
    """A user or token change that cannot be made; the message says why."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    scope: str | None
    dept: str | None
    disabled: bool
    password_hash: str | None = None


def _user(row) -> User:
    return User(row["id"], row["name"], row["role"], row["scope"], row["dept"], bool(row["disabled"]), row["password_hash"])


def get_user(engine: Engine, name: str) -> User | None:
    with engine.connect() as connection:
        row = connection.execute(select(schema.users).where(schema.users.c.name == name)).mappings().first()
    return _user(row) if row else None


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as connection:
        rows = connection.execute(select(schema.users).order_by(schema.users.c.name)).mappings().all()
    return [_user(row) for row in rows]


def validate_user(engine: Engine, role: str, scope: str | None, dept: str | None) -> None:
    """Role and its scope: leaders need a grid, department users a department."""
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    with engine.connect() as connection:
        if scope is not None and connection.execute(select(schema.grids.c.code).where(schema.grids.c.code == scope)).first() is None:
            raise AccountError(f"scope {scope!r} is not a grid code of the database")
        if dept is not None and connection.execute(select(schema.departments.c.code).where(schema.departments.c.code == dept)).first() is None:
            raise AccountError(f"department {dept!r} is not in the database")
    if role == "leader" and scope is None:
        raise AccountError("a leader needs --scope GRID_CODE (the area of their duty)")
    if role == "dept" and dept is None:
        raise AccountError("a department user needs --dept DEPT_CODE")
    if role != "dept" and dept is not None:
        raise AccountError("only department users have a department")


def create_user(engine: Engine, name: str, role: str, password: str | None, scope: str | None = None, dept: str | None = None, actor: str = "cli", remote_addr: str | None = None) -> User:
    """Add a user (audited); wall users have no password, they sign in with a kiosk token."""
    name = (name or "").strip()
    if not name or len(name) > 80 or any(ch.isspace() for ch in name):
        raise AccountError(f"{name!r} is not a user name (1–80 characters, no spaces)")
    validate_user(engine, role, scope, dept)
    if role == "wall":
        if password:
            raise AccountError("wall users sign in with a kiosk token, not a password (python app.py create-token NAME)")
        password_hash = None
    else:
        if not password:
            raise AccountError("a password is required")
        check_password_rules(password)
        password_hash = hash_password(password)
    with engine.begin() as connection:
        if connection.execute(select(schema.users.c.id).where(schema.users.c.name == name)).first() is not None:
            raise AccountError(f"user {name!r} exists already")
        connection.execute(schema.users.insert().values(
            name=name, role=role, scope=scope, dept=dept, password_hash=password_hash, created_at=db.utcnow(), disabled=False,
        ))
        append_audit(connection, actor, "user.create", name, {"role": role, "scope": scope, "dept": dept}, remote_addr)
    return get_user(engine, name)


def set_password(engine: Engine, name: str, password: str, actor: str, remote_addr: str | None = None) -> None:
    check_password_rules(password)
    with engine.begin() as connection:
        if not connection.execute(schema.users.update().where(schema.users.c.name == name).values(password_hash=hash_password(password))).rowcount:
            raise AccountError(f"no user {name!r}")
        append_audit(connection, actor, "user.password", name, None, remote_addr)


def set_disabled(engine: Engine, name: str, disabled: bool, actor: str, remote_addr: str | None = None) -> None:
    """Disable (or enable) a user; a disabled user's sessions and tokens stop working."""
    with engine.begin() as connection:
        if not connection.execute(schema.users.update().where(schema.users.c.name == name).values(disabled=disabled)).rowcount:
            raise AccountError(f"no user {name!r}")
        append_audit(connection, actor, "user.disable" if disabled else "user.enable", name, None, remote_addr)


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user when name and password match and the user is enabled; None otherwise."""
    user = get_user(engine, name)
    ok = verify_password(password, user.password_hash if user else None)
    if not ok or user is None or user.disabled:
        return None
    return user


# ---------------------------------------------------------------- tokens


def create_token(engine: Engine, name: str, actor: str = "cli", remote_addr: str | None = None) -> str:
    """A new API (or, for a wall user, kiosk) token for user ``name``; shown once, audited."""
    token = new_token()
    with engine.begin() as connection:
        user = connection.execute(select(schema.users.c.id, schema.users.c.disabled).where(schema.users.c.name == name)).first()
        if user is None:
            raise AccountError(f"no user {name!r} (python app.py create-user {name} --role ROLE)")
        if user.disabled:
            raise AccountError(f"user {name!r} is disabled")
        connection.execute(schema.api_tokens.insert().values(user_id=user.id, token_hash=token_digest(token), created_at=db.utcnow()))
        token_id = connection.execute(select(func.max(schema.api_tokens.c.id)).where(schema.api_tokens.c.user_id == user.id)).scalar()
        append_audit(connection, actor, "token.create", name, {"token_id": token_id}, remote_addr)
    return token


def revoke_token(engine: Engine, token_id: int, actor: str, remote_addr: str | None = None) -> None:
    with engine.begin() as connection:
        owner = connection.execute(
            select(schema.users.c.name).select_from(schema.api_tokens.join(schema.users, schema.users.c.id == schema.api_tokens.c.user_id))
            .where(schema.api_tokens.c.id == token_id)
        ).scalar()
        if owner is None:
            raise AccountError(f"no token {token_id}")
        connection.execute(schema.api_tokens.update().where(schema.api_tokens.c.id == token_id).values(revoked_at=db.utcnow()))
        append_audit(connection, actor, "token.revoke", owner, {"token_id": token_id}, remote_addr)


def user_for_token(engine: Engine, token: str) -> tuple[User, int] | None:
    """The enabled user a live token belongs to, and the token's id."""
    with engine.connect() as connection:
        row = connection.execute(
            select(schema.users, schema.api_tokens.c.id.label("token_id"))
            .select_from(schema.api_tokens.join(schema.users, schema.users.c.id == schema.api_tokens.c.user_id))
            .where(schema.api_tokens.c.token_hash == token_digest(token), schema.api_tokens.c.revoked_at.is_(None))
        ).mappings().first()
    if row is None or row["disabled"]:
        return None
    return _user(row), row["token_id"]


def token_is_live(engine: Engine, token_id: int) -> bool:
    with engine.connect() as connection:
        row = connection.execute(
            select(schema.api_tokens.c.revoked_at, schema.users.c.disabled)
            .select_from(schema.api_tokens.join(schema.users, schema.users.c.id == schema.api_tokens.c.user_id))
            .where(schema.api_tokens.c.id == token_id)
        ).first()
    return row is not None and row.revoked_at is None and not row.disabled


def list_tokens(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(schema.api_tokens.c.id, schema.users.c.name, schema.api_tokens.c.created_at, schema.api_tokens.c.revoked_at)
            .select_from(schema.api_tokens.join(schema.users, schema.users.c.id == schema.api_tokens.c.user_id))
            .order_by(schema.api_tokens.c.id.desc())
        ).mappings().all()
    return [dict(row) for row in rows]


# ---------------------------------------------------------------- audit


def append_audit(connection, actor: str, action: str, target: str | None, detail: dict | None, remote_addr: str | None) -> None:
    """One entry, inside the caller's transaction: who, when, what, from where."""
    connection.execute(schema.audit_log.insert().values(
        ts=db.utcnow(), actor=actor[:80], action=action, target=(target or "")[:200] or None,
        detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None, remote_addr=(remote_addr or "")[:64] or None,
    ))


def audit(engine: Engine, actor: str, action: str, target: str | None = None, detail: dict | None = None, remote_addr: str | None = None) -> None:
    with engine.begin() as connection:
        append_audit(connection, actor, action, target, detail, remote_addr)


def search_audit(engine: Engine, text: str | None = None, action: str | None = None, start: datetime | None = None, end: datetime | None = None, limit: int = 500) -> list[dict]:
    """Entries newest first; ``text`` matches actor, target, detail or address."""
    a = schema.audit_log.c
    statement = select(schema.audit_log)
    conditions = []
    if text:
        pattern = f"%{text.replace(chr(92), chr(92) * 2).replace('%', chr(92) + '%').replace('_', chr(92) + '_')}%"
        conditions.append(or_(*(column.like(pattern, escape="\\") for column in (a.actor, a.target, a.detail, a.remote_addr))))
    if action:
        conditions.append(a.action.like(f"{action}%"))
    if start:
        conditions.append(a.ts >= db.to_db_time(start))
    if end:
        conditions.append(a.ts < db.to_db_time(end))
    if conditions:
        statement = statement.where(and_(*conditions))
    with engine.connect() as connection:
        rows = connection.execute(statement.order_by(a.id.desc()).limit(limit)).mappings().all()
    return [dict(row) for row in rows]
