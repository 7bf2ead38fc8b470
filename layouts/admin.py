"""Administration screens: users and tokens, and the audit log search. Pure builders."""
from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from urllib.parse import unquote

from dash import dcc, html

from dashboard.i18n import LABELS, t
from data_feeds.accounts import ROLE_NAMES, ROLES
from layouts import ids
from layouts.widgets import date_picker_words, page_header, page_language

# what the audit search filters on: an action, or every action of a kind (login.*, user.*, token.*)
AUDIT_ACTIONS = ("login", "logout", "case.view", "case.unmask", "case.search", "export", "user", "token", "alert.ack", "case.supervise")
DETAIL_CHARS = 300  # a detail longer than this is cut on screen (the search still reads all of it)


def local_time(moment: datetime | None, tz: tzinfo, seconds: bool = False) -> str:
    """A stored (naive UTC) time in the centre's time zone: ``YYYY-MM-DD HH:MM[:SS]``; ``—`` for none."""
    if moment is None:
        return "—"
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return aware.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def action_text(action: str | None, lang: str) -> str:
    """An audit action in words (``case.view`` → 查看案件); an action without words as written."""
    key = f"audit_{action}"
    return t(key, lang) if key in LABELS else str(action or "")


def area_text(code: str | None, names: dict) -> str:
    """A grid, community or town by its name and code: ``长桥街道 (320506003000)``; ``—`` for none."""
    if not code:
        return "—"
    name = names.get("grids", {}).get(code)
    return f"{name} ({code})" if name else code


def dept_text(code: str | None, names: dict) -> str:
    if not code:
        return "—"
    name = names.get("departments", {}).get(code)
    return f"{name} ({code})" if name else code


def _detail_value(key: str, value: object, lang: str, names: dict) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return t("yes" if value else "no", lang)
    if key == "role":
        return _role_name(str(value), lang)
    if key == "scope":
        return area_text(str(value), names)
    if key == "dept":
        return dept_text(str(value), names)
    if key == "screen":
        return t(f"nav_{value}", lang) if f"nav_{value}" in LABELS else str(value)
    if key == "period":
        return t(f"period_{value}", lang) if f"period_{value}" in LABELS else str(value)
    if key == "selection":
        return unquote(str(value)).lstrip("?") or "—"
    return str(value)


def detail_text(detail: str | None, lang: str, names: dict) -> str:
    """An audit entry's detail (JSON as stored) as labelled values: ``角色：领导；管辖范围：长桥街道 (320506003000)``.
    Anything that is not a JSON object is shown as stored."""
    if not detail:
        return ""
    try:
        values = json.loads(detail)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        return detail[:DETAIL_CHARS]
    separator, colon = ("; ", ": ") if lang == "en" else ("；", "：")
    parts = [f"{t(f'detail_{key}', lang) if f'detail_{key}' in LABELS else key}{colon}{_detail_value(key, value, lang, names)}" for key, value in values.items()]
    text = separator.join(parts)
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"


def _role_name(role: str, lang: str) -> str:
    zh, en = ROLE_NAMES.get(role, (role, role))
    return en if lang == "en" else zh


def users_table(users, lang: str, names: dict) -> html.Table:
    head = html.Tr([html.Th(t(key, lang)) for key in ("user_name", "role", "scope", "department", "status", "actions")])
    rows = []
    for user in users:
        actions = [
            html.Button(t("enable" if user.disabled else "disable", lang), id=ids.user_action("enable" if user.disabled else "disable", user.name), className="small-button"),
            html.Button(t("new_token", lang), id=ids.user_action("token", user.name), className="small-button"),
        ]
        if user.role != "wall":
            actions.insert(1, html.Button(t("reset_password", lang), id=ids.user_action("password", user.name), className="small-button"))
        rows.append(html.Tr([
            html.Td(user.name), html.Td(_role_name(user.role, lang)), html.Td(area_text(user.scope, names)), html.Td(dept_text(user.dept, names)),
            html.Td(t("disabled", lang) if user.disabled else t("active", lang), className="muted" if user.disabled else ""),
            html.Td(actions),
        ], className="row-disabled" if user.disabled else ""))
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data-table")


def tokens_table(tokens, lang: str, tz: tzinfo) -> html.Table:
    head = html.Tr([html.Th(t(key, lang)) for key in ("token_id", "user_name", "created", "revoked", "actions")])
    rows = [
        html.Tr([
            html.Td(str(token["id"])), html.Td(token["name"]), html.Td(local_time(token["created_at"], tz)),
            html.Td(local_time(token["revoked_at"], tz)),
            html.Td(html.Button(t("revoke", lang), id=ids.token_revoke(token["id"]), className="small-button") if not token["revoked_at"] else ""),
        ])
        for token in tokens
    ]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data-table")


def users_layout(lang: str, user: str, other_language_href: str, links, users, tokens, names: dict, tz: tzinfo) -> html.Div:
    """``names``: code → name of grids and departments in the page's language (cached_reads.names)."""
    role_options = [{"label": _role_name(role, lang), "value": role} for role in ROLES]
    dept_options = [{"label": dept_text(code, names), "value": code} for code in sorted(names.get("departments", {}))]
    form = html.Div([
        dcc.Input(id=ids.Admin.NEW_NAME, placeholder=t("user_name", lang), className="text-input"),
        dcc.Dropdown(id=ids.Admin.NEW_ROLE, options=role_options, value="leader", clearable=False, className="dropdown"),
        dcc.Input(id=ids.Admin.NEW_SCOPE, placeholder=t("scope_code", lang), className="text-input"),
        dcc.Dropdown(id=ids.Admin.NEW_DEPT, options=dept_options, placeholder=t("department", lang), className="dropdown"),
        dcc.Input(id=ids.Admin.NEW_PASSWORD, type="password", placeholder=t("password_optional", lang), className="text-input"),
        html.Button(t("create_user", lang), id=ids.Admin.CREATE, className="button"),
    ], className="form-row")
    return html.Div([
        page_header([t("nav_admin", lang)], lang, user, other_language_href, links=links),
        html.Section([html.H2(t("create_user", lang), className="section-title"), form,
                      html.Div(id=ids.Admin.MESSAGE, className="message", role="status")]),
        html.Section([html.H2(t("users", lang), className="section-title"), html.Div(users_table(users, lang, names), id=ids.Admin.USERS)]),
        html.Section([html.H2(t("tokens", lang), className="section-title"), html.Div(tokens_table(tokens, lang, tz), id=ids.Admin.TOKENS)]),
        dcc.Store(id=ids.Admin.REFRESH, data=0),
    ], className="page page-admin", lang=page_language(lang))


def audit_table(entries, lang: str, tz: tzinfo, names: dict) -> html.Table:
    """The entries in the centre's local time, actions and details in words (the stored key and
    JSON stay searchable, and the action key is in each row's ``data-action``)."""
    head = html.Tr([html.Th(t(key, lang)) for key in ("time", "actor", "action", "target", "detail", "address")])
    rows = [
        html.Tr([
            html.Td(local_time(entry["ts"], tz, seconds=True), className="nowrap"), html.Td(entry["actor"]), html.Td(action_text(entry["action"], lang)),
            html.Td(entry["target"] or ""), html.Td(detail_text(entry["detail"], lang, names), className="detail"), html.Td(entry["remote_addr"] or ""),
        ], **{"data-action": entry["action"] or ""})
        for entry in entries
    ]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data-table audit-table")


def audit_layout(lang: str, user: str, other_language_href: str, links, entries, names: dict, tz: tzinfo) -> html.Div:
    form = html.Div([
        dcc.Input(id=ids.Admin.AUDIT_TEXT, placeholder=t("search_text", lang), className="text-input", debounce=True),
        dcc.Dropdown(id=ids.Admin.AUDIT_ACTION, options=[{"label": action_text(a, lang), "value": a} for a in AUDIT_ACTIONS], placeholder=t("action", lang), className="dropdown"),
        dcc.DatePickerRange(id=ids.Admin.AUDIT_START, display_format="YYYY-MM-DD", className="date-range", **date_picker_words(lang)),
        html.Button(t("search", lang), id=ids.Admin.AUDIT_SEARCH, className="button"),
    ], className="form-row")
    return html.Div([
        page_header([t("nav_audit", lang)], lang, user, other_language_href, links=links),
        html.Section([form, html.Div(audit_table(entries, lang, tz, names), id=ids.Admin.AUDIT_RESULTS)]),
    ], className="page page-audit", lang=page_language(lang))
