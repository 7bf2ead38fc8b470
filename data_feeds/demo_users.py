"""The demo's users: one of each role, with their credentials kept beside the demo database.

Only for the demo: a real deployment creates its users with ``python app.py create-user``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_feeds import accounts, schema
from data_feeds.credentials import new_password

CREDENTIALS_FILE = "demo/credentials.json"


def _first_town(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.execute(select(schema.grids.c.code).where(schema.grids.c.level == 2).order_by(schema.grids.c.code).limit(1)).scalar()


def ensure_demo_users(engine: Engine, var_dir: Path) -> dict:
    """Create the demo users that are missing; returns name → {role, password or token, ...}."""
    path = Path(var_dir) / CREDENTIALS_FILE
    known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    wanted = {
        "admin": {"role": "admin"},
        "duty": {"role": "operator"},
        "changqiao": {"role": "leader", "scope": _first_town(engine)},
        "cgj": {"role": "dept", "dept": "CGJ"},
        "wall": {"role": "wall"},
    }
    for name, spec in wanted.items():
        if accounts.get_user(engine, name) is not None and name in known:
            continue
        if accounts.get_user(engine, name) is None:
            password = None if spec["role"] == "wall" else new_password()
            accounts.create_user(engine, name, spec["role"], password, spec.get("scope"), spec.get("dept"), actor="demo")
        else:
            password = None
            if spec["role"] != "wall":
                password = new_password()
                accounts.set_password(engine, name, password, actor="demo")
        record = {**spec}
        if spec["role"] == "wall":
            record["token"] = accounts.create_token(engine, name, actor="demo")
        else:
            record["password"] = password
        known[name] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(path, 0o600)
    return known


def describe(credentials: dict, base_url: str) -> str:
    """The lines the demo prints at start."""
    lines = [f"demo users (also in var/{CREDENTIALS_FILE}):"]
    for name, record in credentials.items():
        if record["role"] == "wall":
            lines.append(f"  wall kiosk: {base_url}/kiosk?token={record['token']}&kiosk=1")
        else:
            extra = f", scope {record['scope']}" if record.get("scope") else f", department {record['dept']}" if record.get("dept") else ""
            lines.append(f"  {name:10s} password {record['password']:14s} {record['role']}{extra}")
    return "\n".join(lines)
