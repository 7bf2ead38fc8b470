"""Administration screens: users and tokens, and the audit log search. Pure builders."""
from __future__ import annotations

from dash import dcc, html

from dashboard.i18n import t
from data_feeds.accounts import ROLE_NAMES, ROLES
from layouts import ids
from layouts.widgets import page_header

AUDIT_ACTIONS = ("login", "logout", "case.view", "case.unmask", "export", "user", "token")


def _role_name(role: str, lang: str) -> str:
    zh, en = ROLE_NAMES.get(role, (role, role))
    return en if lang == "en" else zh


def users_table(users, lang: str) -> html.Table:
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
            html.Td(user.name), html.Td(_role_name(user.role, lang)), html.Td(user.scope or "—"), html.Td(user.dept or "—"),
            html.Td(t("disabled", lang) if user.disabled else t("active", lang), className="muted" if user.disabled else ""),
            html.Td(actions),
        ], className="row-disabled" if user.disabled else ""))
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data-table")


def tokens_table(tokens, lang: str) -> html.Table:
    head = html.Tr([html.Th(t(key, lang)) for key in ("token_id", "user_name", "created", "revoked", "actions")])
    rows = [
        html.Tr([
            html.Td(str(token["id"])), html.Td(token["name"]), html.Td(f"{token['created_at']:%Y-%m-%d %H:%M} UTC"),
            html.Td(f"{token['revoked_at']:%Y-%m-%d %H:%M} UTC" if token["revoked_at"] else "—"),
            html.Td(html.Button(t("revoke", lang), id=ids.token_revoke(token["id"]), className="small-button") if not token["revoked_at"] else ""),
        ])
        for token in tokens
    ]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data-table")


def users_layout(lang: str, user: str, other_language_href: str, links, users, tokens, departments) -> html.Div:
    role_options = [{"label": _role_name(role, lang), "value": role} for role in ROLES]
    dept_options = [{"label": f"{code} {name}", "value": code} for code, name in departments]
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
        html.Section([html.H2(t("users", lang), className="section-title"), html.Div(users_table(users, lang), id=ids.Admin.USERS)]),
        html.Section([html.H2(t("tokens", lang), className="section-title"), html.Div(tokens_table(tokens, lang), id=ids.Admin.TOKENS)]),
        dcc.Store(id=ids.Admin.REFRESH, data=0),
    ], className="page page-admin")


def audit_table(entries, lang: str) -> html.Table:
    head = html.Tr([html.Th(t(key, lang)) for key in ("time", "actor", "action", "target", "detail", "address")])
    rows = [
        html.Tr([
            html.Td(f"{entry['ts']:%Y-%m-%d %H:%M:%S} UTC"), html.Td(entry["actor"]), html.Td(entry["action"]),
            html.Td(entry["target"] or ""), html.Td(entry["detail"] or "", className="detail"), html.Td(entry["remote_addr"] or ""),
        ])
        for entry in entries
    ]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="data-table audit-table")


def audit_layout(lang: str, user: str, other_language_href: str, links, entries) -> html.Div:
    form = html.Div([
        dcc.Input(id=ids.Admin.AUDIT_TEXT, placeholder=t("search_text", lang), className="text-input", debounce=True),
        dcc.Dropdown(id=ids.Admin.AUDIT_ACTION, options=[{"label": a, "value": a} for a in AUDIT_ACTIONS], placeholder=t("action", lang), className="dropdown"),
        dcc.DatePickerRange(id=ids.Admin.AUDIT_START, display_format="YYYY-MM-DD"),
        html.Button(t("search", lang), id=ids.Admin.AUDIT_SEARCH, className="button"),
    ], className="form-row")
    return html.Div([
        page_header([t("nav_audit", lang)], lang, user, other_language_href, links=links),
        html.Section([form, html.Div(audit_table(entries, lang), id=ids.Admin.AUDIT_RESULTS)]),
    ], className="page page-audit")
