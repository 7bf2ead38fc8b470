"""User, token and audit administration. Every change is audited by the accounts layer."""
from __future__ import annotations

from datetime import timedelta

from dash import ALL, Input, Output, State, no_update
from dash import ctx as dash_ctx
from flask import request

from callbacks import notices
from dashboard import cached_reads
from dashboard.auth import current_principal, end_user_sessions
from dashboard.context import current_context
from dashboard.i18n import tf, window_error_text
from data_feeds import accounts
from data_feeds.credentials import PasswordError, new_password
from gridrules.clock import utc_now
from gridrules.timewindows import WindowError, local_midnight, parse_moment
from layouts import admin, ids
from layouts.widgets import nav_links


def users_page(ctx, principal, lang: str, query: dict, other_language_href: str):
    return admin.users_layout(
        lang, principal.name, other_language_href, nav_links(principal, lang),
        accounts.list_users(ctx.engine), accounts.list_tokens(ctx.engine), cached_reads.names(ctx, lang), ctx.settings.tz,
    )


def audit_page(ctx, principal, lang: str, query: dict, other_language_href: str):
    return admin.audit_layout(lang, principal.name, other_language_href, nav_links(principal, lang), accounts.search_audit(ctx.engine, limit=200),
                              cached_reads.names(ctx, lang), ctx.settings.tz)


def _lang() -> str:
    return "en" if "lang=en" in (request.referrer or "") else "zh"


def register(app) -> None:
    @app.callback(
        Output(ids.Admin.MESSAGE, "children", allow_duplicate=True),
        Output(ids.Admin.REFRESH, "data", allow_duplicate=True),
        Input(ids.Admin.CREATE, "n_clicks"),
        State(ids.Admin.NEW_NAME, "value"),
        State(ids.Admin.NEW_ROLE, "value"),
        State(ids.Admin.NEW_SCOPE, "value"),
        State(ids.Admin.NEW_DEPT, "value"),
        State(ids.Admin.NEW_PASSWORD, "value"),
        State(ids.Admin.REFRESH, "data"),
        prevent_initial_call=True,
    )
    def create_user(_, name, role, scope, dept, password, refresh):
        ctx, principal, lang = current_context(), current_principal(), _lang()
        principal.require("admin")
        generated = None
        if role != "wall" and not password:
            password = generated = new_password()
        try:
            accounts.create_user(ctx.engine, name or "", role, password if role != "wall" else None, scope or None,
                                 dept if role == "dept" else None, actor=principal.name, remote_addr=request.remote_addr)
        except (accounts.AccountError, PasswordError) as error:
            return str(error), no_update
        message = tf("user_created", lang, name=name)
        if generated:
            message += " · " + tf("password_once", lang, password=generated)
        return message, (refresh or 0) + 1

    @app.callback(
        Output(ids.Admin.MESSAGE, "children", allow_duplicate=True),
        Output(ids.Admin.REFRESH, "data", allow_duplicate=True),
        Input(ids.user_action(ALL, ALL), "n_clicks"),
        State(ids.Admin.REFRESH, "data"),
        prevent_initial_call=True,
    )
    def user_action(clicks, refresh):
        if not any(clicks or []):
            return no_update, no_update  # the buttons were just drawn
        ctx, principal, lang = current_context(), current_principal(), _lang()
        principal.require("admin")
        action, name = dash_ctx.triggered_id["action"], dash_ctx.triggered_id["name"]
        remote = request.remote_addr
        try:
            if action in ("disable", "enable"):
                accounts.set_disabled(ctx.engine, name, action == "disable", principal.name, remote)
                if action == "disable":
                    end_user_sessions(ctx, principal, name, keep_own=False)
                message = tf("user_disabled" if action == "disable" else "user_enabled", lang, name=name)
            elif action == "password":
                password = new_password()
                accounts.set_password(ctx.engine, name, password, principal.name, remote)
                end_user_sessions(ctx, principal, name, keep_own=True)  # whoever knew the old password is out
                message = tf("password_once", lang, password=password)
            else:
                token = accounts.create_token(ctx.engine, name, principal.name, remote)
                message = tf("token_once", lang, name=name, token=token)
                if accounts.get_user(ctx.engine, name).role == "wall":
                    message += " · " + tf("kiosk_url", lang, url=f"{request.host_url}kiosk?token={token}&kiosk=1")
        except (accounts.AccountError, PasswordError) as error:
            return str(error), no_update
        return message, (refresh or 0) + 1

    @app.callback(
        Output(ids.Admin.MESSAGE, "children", allow_duplicate=True),
        Output(ids.Admin.REFRESH, "data", allow_duplicate=True),
        Input(ids.token_revoke(ALL), "n_clicks"),
        State(ids.Admin.REFRESH, "data"),
        prevent_initial_call=True,
    )
    def revoke(clicks, refresh):
        if not any(clicks or []):
            return no_update, no_update
        ctx, principal, lang = current_context(), current_principal(), _lang()
        principal.require("admin")
        token_id = dash_ctx.triggered_id["token"]
        try:
            accounts.revoke_token(ctx.engine, int(token_id), principal.name, request.remote_addr)
        except (accounts.AccountError, ValueError) as error:
            return str(error), no_update
        return tf("token_revoked", lang, token=token_id), (refresh or 0) + 1

    @app.callback(
        Output(ids.Admin.USERS, "children"),
        Output(ids.Admin.TOKENS, "children"),
        Input(ids.Admin.REFRESH, "data"),
        prevent_initial_call=True,
    )
    def redraw(_):
        ctx, principal, lang = current_context(), current_principal(), _lang()
        principal.require("admin")
        return (admin.users_table(accounts.list_users(ctx.engine), lang, cached_reads.names(ctx, lang)),
                admin.tokens_table(accounts.list_tokens(ctx.engine), lang, ctx.settings.tz))

    @app.callback(
        Output(ids.Admin.AUDIT_RESULTS, "children"),
        Input(ids.Admin.AUDIT_SEARCH, "n_clicks"),
        Input(ids.Admin.AUDIT_TEXT, "value"),
        State(ids.Admin.AUDIT_ACTION, "value"),
        State(ids.Admin.AUDIT_START, "start_date"),
        State(ids.Admin.AUDIT_START, "end_date"),
        prevent_initial_call=True,
    )
    def search(_, text, action, start, end):
        ctx, principal, lang = current_context(), current_principal(), _lang()
        principal.require("audit")
        tz, now = ctx.settings.tz, utc_now()
        try:  # the dates within the bounds (any length: the search answers at most 500 entries)
            begin = parse_moment(start[:10], tz, now) if start else None
            finish = local_midnight(parse_moment(end[:10], tz, now).date() + timedelta(days=1), tz) if end else None
        except WindowError as error:
            notices.show(window_error_text(error, lang))
            return no_update
        return admin.audit_table(accounts.search_audit(ctx.engine, text or None, action, begin, finish), lang, tz, cached_reads.names(ctx, lang))
